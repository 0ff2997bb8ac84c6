"""Targets: where verify runs an artifact besides this machine. A target is a named interpreter reached through a
transport (another Python here, or a board over the system's OpenSSH client); exportkit streams its agent there
and feeds it through a :class:`~export_kit.targets.remote.RemoteRunner`, so every verify check runs on the device
unchanged."""
