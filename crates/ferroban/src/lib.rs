//! ferroban: a fail2ban-compatible intrusion-prevention daemon.
