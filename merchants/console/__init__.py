"""The merchant console: a small, mobile-friendly web area for a merchant's owners and clerks.

Django templates and a little CSS, no front-end build. Staff sign in with a Django session (CSRF on
every form); every page acts only for the signed-in person's own merchant, through the same
services and selectors as the API.
"""
