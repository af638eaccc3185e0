"""CloudStack's agent wire: commands, answers, transfer objects and the Gson-shape codec.

Importing this package registers every command, answer and TO class by its Java name.
No I/O happens here; both the agent and the management server use it.
"""

from hvcloud.wire import answers, commands, routing, security_groups, startup, to
from hvcloud.wire.base import ANSWERS, COMMANDS, TRANSFER_OBJECTS, Answer, Command, WireModel
from hvcloud.wire.codec import UnknownCommand, WireError

__all__ = ["ANSWERS", "COMMANDS", "TRANSFER_OBJECTS", "Answer", "Command", "UnknownCommand",
           "WireError", "WireModel", "answers", "commands", "routing", "security_groups", "startup", "to"]
