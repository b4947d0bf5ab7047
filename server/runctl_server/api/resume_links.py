"""Resume links (the paused executions API's `apiUrl` / `uiUrl`) that carry their own credential.

A person asked to approve a step gets a link, not an API key. Each link carries a token signed with
the server's key (store/server_keys.py) naming the workspace, the run and the pause point, so it
opens that one pause point and nothing else. The token needs no expiry of its own: it is honoured
only while its pause point waits (http/routes/hitl.py), so it expires with the pause point and,
once used, cannot be used again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from itsdangerous import BadData, URLSafeSerializer

from runctl_server.engine.resumes import NO_WORKFLOW
from runctl_server.errors import Unauthenticated

LINK_PARAM = "token"
_SALT = "runctl.resume-link.v1"


@dataclass(frozen=True)
class LinkClaim:
    """What a valid token lets its holder do: answer this pause point of this run, in this workspace."""

    workspace_id: str
    execution_id: str
    context_id: str


class ResumeLinks:
    """Builds the resume links of pause points and checks the tokens they carry."""

    def __init__(self, base_url: str, keys: Sequence[bytes]) -> None:
        """`keys` oldest first: the last signs new links, every one of them is accepted, so a key
        can be rotated in (add it last) and out (drop it once its links have been used)."""
        if not keys:
            raise ValueError("resume links need at least one signing key")
        self.base_url = base_url.rstrip("/")
        self._serializer = URLSafeSerializer(list(keys), salt=_SALT)

    def token(self, claim: LinkClaim) -> str:
        return str(self._serializer.dumps([claim.workspace_id, claim.execution_id, claim.context_id]))

    def urls(self, claim: LinkClaim, workflow_id: str) -> tuple[str, str]:
        """The `apiUrl` (resume over HTTP) and `uiUrl` (the approval page) of a pause point."""
        run = f"{quote(workflow_id or NO_WORKFLOW, safe='')}/{quote(claim.execution_id, safe='')}"
        query = f"?{LINK_PARAM}={self.token(claim)}"
        return (
            f"{self.base_url}/api/resume/{run}/{quote(claim.context_id, safe='')}{query}",
            f"{self.base_url}/resume/{run}{query}",
        )

    def verify(self, token: str) -> LinkClaim:
        """The claim of a genuine token; Unauthenticated for anything else (altered, made up, or
        signed by another server's key)."""
        try:
            data = self._serializer.loads(token)
        except BadData:
            data = None
        if not (isinstance(data, list) and len(data) == 3 and all(isinstance(part, str) for part in data)):
            raise Unauthenticated(
                "the resume link is not valid: its token was altered or is not ours",
                reason="RESUME_LINK_INVALID",
            )
        return LinkClaim(*data)
