"""The accounts API: guests, agreements, profile, identities, data sources, friends, rights.

Thin views: validate with the nested input serializer, call one service or selector, answer with
the output serializer. Everything a person reads or changes here is their own (`request.user`);
the only other person a route names is a friend to remove, and only among their own friends.
"""
