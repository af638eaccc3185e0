"""Command handlers, one module per area. Importing this package fills the dispatch table."""

import hvcloud.agent.handlers.console
import hvcloud.agent.handlers.host
import hvcloud.agent.handlers.network
import hvcloud.agent.handlers.router
import hvcloud.agent.handlers.security_groups
import hvcloud.agent.handlers.storage
import hvcloud.agent.handlers.vm  # noqa: F401
