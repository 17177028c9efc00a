"""The API's URL resolver: a path is tried only against the routes that can match its first segment.

Django resolves a path by trying every route in order, and every route that fails adds to a list of
what was tried: the API's hundred routes under `/api/v1/`, five apps' includes side by side, made
the leaderboard read try fifty routes before its own, a tenth of what the read cost in the app.
`api_path` mounts a list of routes as `path(route, include(...))` does, with a resolver that keeps,
for each first segment of the rest of the path, the routes whose own first segment it can start
with (a route that starts with a converter or a regular expression is kept for every segment),
in their order, and inside each app's routes mounted at "" the same. A path then resolves exactly
as it would, only trying fewer routes; reversing a name is untouched.
"""

from __future__ import annotations

from django.urls import include
from django.urls.resolvers import RoutePattern, URLPattern, URLResolver

# First segments remembered per resolver (the API's are a few dozen; a flood of made-up paths is
# not allowed to grow the memory).
SEGMENTS_REMEMBERED = 512


def _prefixes(entry: URLPattern | URLResolver) -> list[str] | None:
    """The literal text each path this entry can match starts with; None: any path (a regular
    expression, or a route that starts with a converter)."""
    pattern = entry.pattern
    if not isinstance(pattern, RoutePattern):
        return None
    route = str(pattern._route)
    if route == "" and isinstance(entry, URLResolver):
        found: list[str] = []
        for child in entry.url_patterns:
            prefixes = _prefixes(child)
            if prefixes is None:
                return None
            found += prefixes
        return found
    literal = route.split("<", 1)[0]
    return [literal] if literal else None


def _may_match(prefixes: list[str] | None, segment: str) -> bool:
    if prefixes is None:
        return True
    return any(segment.startswith(prefix.split("/", 1)[0]) for prefix in prefixes)


def _narrowed(resolver: URLResolver, segment: str) -> URLResolver:
    """`resolver` with only the routes that may match a path starting with `segment`; an app's
    routes mounted at "" (`path("", include(...))`) narrowed the same way, in a resolver of their
    own with the include's names, so a match names what Django's would."""
    candidates = []
    for entry in resolver.url_patterns:
        if not _may_match(_prefixes(entry), segment):
            continue
        if (
            isinstance(entry, URLResolver)
            and isinstance(entry.pattern, RoutePattern)
            and not str(entry.pattern._route)
        ):
            entry = _narrowed(entry, segment)
        candidates.append(entry)
    return URLResolver(
        resolver.pattern,
        candidates,
        resolver.default_kwargs,
        app_name=resolver.app_name,
        namespace=resolver.namespace,
    )


class FirstSegmentResolver(URLResolver):
    """`URLResolver`, resolving through a resolver of the routes that may match the path's first
    segment (see the module's docstring)."""

    def _resolver_for(self, segment: str) -> URLResolver:
        by_segment = self.__dict__.setdefault("_by_segment", {})
        resolver = by_segment.get(segment)
        if resolver is None:
            if len(by_segment) >= SEGMENTS_REMEMBERED:
                by_segment.clear()
            resolver = by_segment[segment] = _narrowed(self, segment)
        return resolver

    def resolve(self, path):
        path = str(path)
        match = self.pattern.match(path)
        if not match:
            return super().resolve(path)
        rest = match[0]
        return self._resolver_for(rest.split("/", 1)[0]).resolve(path)


def api_path(route: str, patterns: list, *, app_name: str, namespace: str) -> FirstSegmentResolver:
    """`path(route, include((patterns, app_name), namespace=namespace))`, resolved by first segment."""
    urlconf_module, app_name, namespace = include((patterns, app_name), namespace=namespace)
    return FirstSegmentResolver(
        RoutePattern(route, is_endpoint=False), urlconf_module, app_name=app_name, namespace=namespace
    )
