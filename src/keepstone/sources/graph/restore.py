"""An Office365 organization as a put-back writes into it: messages into mailboxes
(``mail_restore``), files into OneDrives (``drive_restore``).

Users are found by their Keepstone name (the lower-cased user principal name); each put-back
gets its own Graph client, closed when its outcomes have all been given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from functools import partial

from keepstone.domain.errors import InvalidInput
from keepstone.engine import Item
from keepstone.sources.graph.access import GraphAccess, GraphUser
from keepstone.sources.graph.auth import CredentialError
from keepstone.sources.graph.client import GraphClient
from keepstone.sources.graph.drive_restore import put_back_files
from keepstone.sources.graph.errors import GraphError, TokenError
from keepstone.sources.graph.mail_restore import MailOptions, PutBackFailed, put_back_mail
from keepstone.sources.targets import Outcome, Placement, Reader

PutBack = Callable[[GraphClient, GraphUser, Sequence[Item], Reader, Placement], Iterator[Outcome]]


class GraphTarget:
    """The restore target of an Office365 organization."""

    def __init__(
        self, access: GraphAccess, users: Sequence[GraphUser], mail: MailOptions | None = None
    ) -> None:
        self.access = access
        self.users_given = tuple(users)
        self.by_name = {user.name: user for user in users}
        self.mail = mail or MailOptions()

    def with_mail_options(self, mail: MailOptions) -> GraphTarget:
        """The same organization, putting messages back with ``mail``'s options."""
        return GraphTarget(self.access, self.users_given, mail)

    def users(self) -> list[str]:
        return list(self.by_name)

    def put_back(self, items: Sequence[Item], read: Reader, where: Placement) -> Iterator[Outcome]:
        user = self.by_name.get(where.user)
        if user is None:
            raise InvalidInput(
                f"user '{where.user}' does not exist in the organization", "userName"
            )
        put = _put_back_of(items)
        if put is put_back_mail:
            put = partial(put_back_mail, options=self.mail)
        stack = ExitStack()
        client = stack.enter_context(self.access.client())
        try:
            outcomes = put(client, user, items, read, where)  # refusals raise here, eagerly
        except (GraphError, TokenError, CredentialError) as error:
            stack.close()
            return _all_failed(items, error)
        except BaseException:
            stack.close()
            raise
        return _closing(stack, outcomes)


def _put_back_of(items: Sequence[Item]) -> PutBack:
    kinds = {item.kind for item in items}
    if kinds <= {"mail"}:
        return put_back_mail
    if kinds == {"file"}:
        return put_back_files
    raise InvalidInput("only messages or only files can be put back at once", "ids")


def _all_failed(items: Sequence[Item], error: Exception) -> Iterator[Outcome]:
    """The organization could not be reached at all (its application refused, Graph down):
    every item fails with why, as a per-item warning of the restore."""
    failed = PutBackFailed(f"the organization cannot be written: {error}")
    yield from (Outcome(item, error=failed) for item in items)


def _closing(stack: ExitStack, outcomes: Iterator[Outcome]) -> Iterator[Outcome]:
    with stack:
        yield from outcomes
