from django.urls import path

from activities import apis
from activities.statements.urls import urlpatterns as statement_urlpatterns

urlpatterns = [
    path("activities/methodology", apis.MethodologyApi.as_view(), name="activities-methodology"),
    path("activities/today", apis.TodayApi.as_view(), name="activities-today"),
    path("activities/steps", apis.StepSyncApi.as_view(), name="activities-steps"),
    path("activities/steps/werun", apis.WeRunSyncApi.as_view(), name="activities-werun"),
    path("activities/records", apis.RecordListApi.as_view(), name="activities-records"),
    path("activities/records/<int:record_id>", apis.RecordDetailApi.as_view(), name="activities-record"),
    path(
        "activities/records/<int:record_id>/appeal",
        apis.RecordAppealApi.as_view(),
        name="activities-record-appeal",
    ),
    path("activities/partner-links", apis.PartnerLinkListApi.as_view(), name="activities-partner-links"),
    path(
        "activities/partner-links/<int:link_id>",
        apis.PartnerLinkDetailApi.as_view(),
        name="activities-partner-link",
    ),
    path("activities/partner-links/code", apis.PartnerLinkCodeApi.as_view(), name="activities-link-code"),
    path("partner/records", apis.PartnerRecordsApi.as_view(), name="partner-records"),
    path("partner/links", apis.PartnerLinksApi.as_view(), name="partner-links"),
    path("partner/signature", apis.PartnerSignatureCheckApi.as_view(), name="partner-signature"),
    *statement_urlpatterns,
]
