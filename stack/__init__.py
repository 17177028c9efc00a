"""The local stack: PostgreSQL and Redis from pinned wheels, and the processes `make run` supervises.

Plain Python, no Django: `stack.servers` starts the servers for `make run` (under var/) and for
`make test` (throwaway, in a temporary folder); `stack.run` is `make run`'s supervisor.
"""
