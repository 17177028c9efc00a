"""Carbon statements that travel between platforms (docs/interop.md).

- `issuing`: a person's verified reductions of a month as a compact JWS signed with the platform's
  Ed25519 key, for one receiving platform (its audience) under a pairwise subject; and the public
  check of a statement we issued.
- `importing`: statements other platforms signed for us, brought by the person with a one-time
  nonce we handed them; verified against the peer's registered keys and imported once.
- `selectors`: imported carbon as the report, the rating and the credit profile count it.
- `schema`: the JSON Schema of a statement's claims, the one both sides check.
"""
