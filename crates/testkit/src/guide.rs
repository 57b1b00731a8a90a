//! The classic fail2ban guide's files, verbatim: what an administrator following it writes into
//! `/etc/fail2ban/jail.local` and `/etc/fail2ban/jail.d/custom.conf` (tests/guide.rs runs them
//! over ferroban's defaults and over fail2ban's tree, tests/metrics_top.rs and tests/deb.rs use
//! them too, bench/start.py reads them from this file's source).

/// The guide's jail.local, verbatim.
pub const JAIL_LOCAL: &str = r#"[DEFAULT]
bantime = 10m
findtime = 10m
maxretry = 5

[sshd]
enabled = true

[nginx-http-auth]
enabled  = true
filter   = nginx-http-auth
port     = http,https
logpath  = /var/log/nginx/error.log

[nginx-badbots]
enabled  = true
port     = http,https
filter   = nginx-badbots
logpath  = /var/log/nginx/access.log
maxretry = 2

[nginx-noscript]
enabled  = true
port     = http,https
filter   = nginx-noscript
logpath  = /var/log/nginx/access.log
maxretry = 6

[nginx-404]
enabled  = true
port     = http,https
filter   = nginx-404
logpath  = /var/log/nginx/access.log
maxretry = 6

[nginx-limit-req]
enabled  = true
port     = http,https
filter   = nginx-limit-req
logpath  = /var/log/nginx/error.log
maxretry = 10
"#;

/// The guide's jail.d/custom.conf, verbatim.
pub const CUSTOM_CONF: &str = r#"[DEFAULT]
bantime = 1d
findtime = 1d
ignoreip = 127.0.0.1/8 192.168.0.0/16
maxretry = 1
banaction = ufw
banaction_allports = ufw

[sshd]
enabled = true

[nginx-4xx]
enabled = true
port = http,https
logpath = %(nginx_access_log)s

[nginx-http-auth]
enabled = true
port = http,https
logpath = %(nginx_error_log)s

[nginx-botsearch]
enabled = true
port = http,https
logpath = /var/log/nginx/access.log

[nginx-forbidden]
enabled = true
port = http,https
logpath = %(nginx_error_log)s

[nginx-sslerror]
enabled = true
port = http,https
logpath = %(nginx_error_log)s

[ufw]
enabled = true
filter = ufw
logpath = /var/log/ufw.log

[fastapi]
enabled = true
filter = fastapi-auth
port = http,https
logpath = /var/log/fastapi/auth.log
"#;

/// The guide's twelve jails, sorted.
pub const GUIDE_JAILS: [&str; 12] = [
    "fastapi",
    "nginx-404",
    "nginx-4xx",
    "nginx-badbots",
    "nginx-botsearch",
    "nginx-forbidden",
    "nginx-http-auth",
    "nginx-limit-req",
    "nginx-noscript",
    "nginx-sslerror",
    "sshd",
    "ufw",
];
