//! Blocklists for `set <jail> banip --file PATH|-` (and `unbanip --file`): one address or
//! network per line; `#` and `;` start a comment; blank lines are skipped. The client reads the
//! file (or standard input for `-`), reports each invalid line with its number, and sends the
//! valid rest to the server as one bulk request.

use std::io::BufRead;

use crate::ip::HostId;

/// A line that is not an address or network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// The line's text (without its comment).
    pub text: String,
    /// Why it was refused.
    pub reason: &'static str,
}

/// The addresses and networks of a blocklist, in file order, and its invalid lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Blocklist {
    /// Valid entries as written (`203.0.113.0/24`).
    pub ids: Vec<String>,
    /// Invalid lines.
    pub bad: Vec<BadLine>,
}

/// Reads a blocklist. An I/O error (or a line that is not UTF-8) stops the reading.
pub fn read(input: impl BufRead) -> std::io::Result<Blocklist> {
    let mut out = Blocklist::default();
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        let text = line.split(['#', ';']).next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let mut words = text.split_whitespace();
        let first = words.next().unwrap_or("");
        let reason = if words.next().is_some() {
            Some("more than one word")
        } else if matches!(HostId::parse(first), HostId::Raw(_)) {
            Some("not an IP address or network")
        } else {
            None
        };
        match reason {
            Some(reason) => out.bad.push(BadLine {
                line: n + 1,
                text: text.to_string(),
                reason,
            }),
            None => out.ids.push(first.to_string()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_bad_lines_with_numbers() {
        let text = "# a list\n192.0.2.1\n\n198.51.100.0/24 ; SBL 1\n  2001:db8::/32  # net\nnot-an-ip\n10.0.0.1 10.0.0.2\n300.1.1.1\n";
        let b = read(text.as_bytes()).unwrap();
        assert_eq!(b.ids, vec!["192.0.2.1", "198.51.100.0/24", "2001:db8::/32"]);
        let bad: Vec<(usize, &str)> = b.bad.iter().map(|l| (l.line, l.text.as_str())).collect();
        assert_eq!(
            bad,
            vec![(6, "not-an-ip"), (7, "10.0.0.1 10.0.0.2"), (8, "300.1.1.1")]
        );
    }
}
