//! Failure tracking (findtime/maxretry), bans (bantime, bantime.increment), and their store.
