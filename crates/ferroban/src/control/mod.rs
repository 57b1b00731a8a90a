//! Control socket protocol and `ferroban client` (fail2ban-client) (issue 3).
