//! Actions: fail2ban `action.d` shell actions run with escaped tags (issue 3).
