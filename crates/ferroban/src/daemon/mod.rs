//! The daemon: jails, sources, bans, actions and the control socket wired together (issue 3).
