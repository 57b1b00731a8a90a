//! fail2ban's framing on ferroban's socket: what a connection that speaks it sends and gets.
//!
//! A request is a pickled list of command words followed by [`END`]; [`CLOSE`] + [`END`]
//! closes the connection. The answer is the pickled pair `(0, value)` or `(1, exception)` + [`END`],
//! as fail2ban's server writes it: values keep the Python types fail2ban-client's beautifier
//! relies on (the pairs of `status` are tuples, `datepattern` a tuple), and an error is the
//! exception fail2ban raises for it ([`exception_for`]) so that the client prints the same text.
//! A request the decoder refuses ([`super::pickle`]) gets the string `"ERROR: <why>"` (what
//! fail2ban answers to a message it cannot load) and the connection is closed.

use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

use super::cmd;
use super::pickle::{self, Accept, PyVal};
pub use super::pickle::{CLOSE, END};

/// True when a request starting with `first` is in fail2ban's framing: a byte a pickle can start
/// with (`PROTO`, a mark, an empty container, a scalar or global opcode) or the `<` of
/// `<F2B_CLOSE_COMMAND>`. Anything else (a JSON line starts with `{`) is read as a JSON line, and
/// what is neither gets the JSON protocol's error.
pub fn is_f2b_start(first: u8) -> bool {
    b"\x80\x95()]}NIJKLMFGSTUVXBCcP<\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f".contains(&first)
}

/// How reading one frame ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A frame; [`END`] consumed, not stored.
    Complete,
    /// End of stream before [`END`].
    Eof,
    /// Longer than the limit.
    TooLong,
}

/// Reads up to and including the next [`END`] into `buf` (without it), at most `max` bytes, or
/// `bulk_max` for a bulk ban request (its first words are `set <jail> banip|unbanip`:
/// [`bulk_pickle_prefix`]), as the JSON lines allow.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    mut max: usize,
    bulk_max: usize,
) -> std::io::Result<Frame> {
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(Frame::Eof);
        }
        // The terminator may straddle two reads: search from just before the new bytes.
        let start = buf.len().saturating_sub(END.len() - 1);
        let n = chunk.len();
        buf.extend_from_slice(chunk);
        if let Some(i) = memchr::memmem::find(&buf[start..], END) {
            let end = start + i;
            // Give back what follows the terminator (a pipelined next request).
            let surplus = buf.len() - (end + END.len());
            buf.truncate(end);
            if buf.len() > max {
                return Ok(Frame::TooLong);
            }
            r.consume(n - surplus);
            return Ok(Frame::Complete);
        }
        r.consume(n);
        if buf.len() > max + END.len() {
            if max < bulk_max && bulk_pickle_prefix(buf) {
                max = bulk_max;
                continue;
            }
            return Ok(Frame::TooLong);
        }
    }
}

/// Whether a pickle starts a list whose first three items are the strings `set`, a jail name
/// and `banip` or `unbanip`: the bulk requests that may be longer than the usual limit (which
/// forms are bulk is said by the command definition, `cmd::starts_bulk`). Only
/// the opcodes Python's pickler (protocols 2 to 5: fail2ban's client uses the highest) writes
/// before them are followed (PROTO, FRAME, EMPTY_LIST, MARK, memo puts, the string opcodes);
/// anything else
/// answers false, and the whole frame is still decoded by [`super::pickle`] once read.
pub fn bulk_pickle_prefix(data: &[u8]) -> bool {
    let mut pos = 0;
    let mut words: Vec<&[u8]> = Vec::new();
    let take = |pos: &mut usize, n: usize| -> Option<&[u8]> {
        let s = data.get(*pos..pos.checked_add(n)?)?;
        *pos += n;
        Some(s)
    };
    let le = |b: &[u8]| {
        b.iter()
            .rev()
            .fold(0usize, |a, &x| (a << 8) | usize::from(x))
    };
    let mut list_open = false;
    while words.len() < cmd::BULK_PREFIX_WORDS {
        let Some(&op) = data.get(pos) else {
            return false;
        };
        pos += 1;
        match op {
            0x80 => {
                if take(&mut pos, 1).is_none() {
                    return false;
                }
            }
            0x95 => {
                if take(&mut pos, 8).is_none() {
                    return false;
                }
            }
            b']' if !list_open => list_open = true,
            b'(' if list_open && words.is_empty() => {}
            b'q' => {
                if take(&mut pos, 1).is_none() {
                    return false;
                }
            }
            b'r' => {
                if take(&mut pos, 4).is_none() {
                    return false;
                }
            }
            0x94 => {}
            b'X' | b'T' if list_open => {
                let Some(n) = take(&mut pos, 4).map(le) else {
                    return false;
                };
                match take(&mut pos, n) {
                    Some(w) if n <= 256 => words.push(w),
                    _ => return false,
                }
            }
            0x8d if list_open => {
                let Some(n) = take(&mut pos, 8).map(le) else {
                    return false;
                };
                match take(&mut pos, n) {
                    Some(w) if n <= 256 => words.push(w),
                    _ => return false,
                }
            }
            0x8c | b'U' if list_open => {
                let Some(n) = take(&mut pos, 1).map(le) else {
                    return false;
                };
                match take(&mut pos, n) {
                    Some(w) => words.push(w),
                    None => return false,
                }
            }
            b'V' if list_open => {
                let Some(end) = memchr::memchr(b'\n', &data[pos..]) else {
                    return false;
                };
                words.push(&data[pos..pos + end]);
                pos += end + 1;
            }
            _ => return false,
        }
    }
    // The command definition says which forms are bulk; a jail is never named by nothing.
    let words: Vec<_> = words.iter().map(|w| String::from_utf8_lossy(w)).collect();
    let words: Vec<&str> = words.iter().map(|w| w.as_ref()).collect();
    !words[1].is_empty() && cmd::starts_bulk(&words)
}

/// A decoded request: the command words, or the close message.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// `<F2B_CLOSE_COMMAND>`.
    Close,
    /// A command.
    Command(Vec<String>),
}

/// Decodes one frame (without [`END`]) into command words.
///
/// fail2ban-client's `reload` sends `["reload", TARGET, [OPTIONS...], [CONFIG STREAM...]]`; the
/// words become those of the typed command (`cmd::reload_request`: `reload OPTIONS... TARGET`;
/// ferroban re-reads the configuration itself, the stream is not used). Other nested lists (`server-stream`, `multi-set`: the configuration
/// stream of `start`) are refused with a message.
pub fn decode_request(frame: &[u8]) -> Result<Message, String> {
    if frame == CLOSE {
        return Ok(Message::Close);
    }
    let v = pickle::decode(frame, Accept::Commands).map_err(|e| e.to_string())?;
    let items = match v {
        PyVal::List(items) | PyVal::Tuple(items) => items,
        other => {
            return Err(format!(
                "refused: a request is a list of command words, not {}",
                other.as_text()
            ));
        }
    };
    let word = |v: &PyVal| -> Result<String, String> {
        match v {
            PyVal::List(_) | PyVal::Tuple(_) => {
                Err("refused: unexpected nested list in a command".into())
            }
            other => Ok(other.as_text()),
        }
    };
    if let Some(PyVal::Str(first)) = items.first() {
        match first.as_str() {
            cmd::RELOAD if items.len() == 4 => {
                let target = word(&items[1])?;
                let opts = match &items[2] {
                    PyVal::List(o) | PyVal::Tuple(o) => {
                        o.iter().map(word).collect::<Result<Vec<_>, _>>()?
                    }
                    other => vec![word(other)?],
                };
                return Ok(Message::Command(cmd::reload_request(&opts, &target)));
            }
            "server-stream" | "multi-set" => {
                return Err(format!(
                    "'{first}' (a configuration stream) is not accepted: ferroban reads its \
                     configuration itself (ferroban server -c DIR)"
                ));
            }
            _ => {}
        }
    }
    items
        .iter()
        .map(word)
        .collect::<Result<Vec<_>, _>>()
        .map(Message::Command)
}

/// The exception fail2ban raises for an error message of [`super::proto`]: its module, class and
/// argument.
pub fn exception_for(message: &str) -> PyVal {
    let quoted = |prefix: &str, suffix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(suffix))
            .map(str::to_string)
    };
    let (module, name, arg) = if let Some(j) = quoted("Sorry but the jail '", "' does not exist") {
        ("fail2ban.exceptions", "UnknownJailException", j)
    } else if let Some(j) = quoted("The jail '", "' already exists") {
        ("fail2ban.exceptions", "DuplicateJailException", j)
    } else if message == super::proto::invalid_command() {
        (
            "builtins",
            "IndexError",
            "list index out of range".to_string(),
        )
    } else {
        ("builtins", "Exception", message.to_string())
    };
    PyVal::Object {
        module: module.into(),
        name: name.into(),
        args: vec![PyVal::Str(arg)],
    }
}

/// The message of an exception record a fail2ban server answered, as fail2ban-client prints it.
pub fn message_of(exc: &PyVal) -> String {
    match exc {
        PyVal::Object { name, args, .. } => {
            let first = args.first().map(PyVal::as_text).unwrap_or_default();
            match name.as_str() {
                "UnknownJailException" => super::proto::unknown_jail(&first),
                "DuplicateJailException" => super::proto::duplicate_jail(&first),
                "IndexError" => super::proto::invalid_command(),
                // str(KeyError('x')) is the repr of its argument.
                "KeyError" if args.len() == 1 => match &args[0] {
                    PyVal::Str(s) => super::pyrepr::repr_str(s),
                    other => other.as_text(),
                },
                _ if args.len() == 1 => first,
                _ if args.is_empty() => String::new(),
                _ => PyVal::Tuple(args.clone()).as_text(),
            }
        }
        other => other.as_text(),
    }
}

/// `(0, value)` for a result, `(1, exception)` for an error, typed as fail2ban's server answers
/// command `argv`.
pub fn reply(argv: &[String], result: &Result<Value, String>) -> PyVal {
    match result {
        Ok(v) => PyVal::Tuple(vec![PyVal::Int(0), typed(argv, v)]),
        Err(e) => PyVal::Tuple(vec![PyVal::Int(1), exception_for(e)]),
    }
}

/// `"ERROR: <why>"`: fail2ban's answer to a message it cannot load.
pub fn load_error(why: &str) -> PyVal {
    PyVal::Str(format!("ERROR: {why}"))
}

/// Pairs `["label", value]` (lists of them) as tuples, recursively: the shape of `status`.
fn pairs(v: &Value) -> PyVal {
    match v {
        Value::Array(a)
            if !a.is_empty()
                && a.iter()
                    .all(|e| matches!(e, Value::Array(p) if p.len() == 2 && p[0].is_string())) =>
        {
            PyVal::List(
                a.iter()
                    .map(|e| {
                        let p = e.as_array().expect("checked");
                        PyVal::Tuple(vec![PyVal::from_json(&p[0]), pairs(&p[1])])
                    })
                    .collect(),
            )
        }
        // `status --all`: the pairs, then jail name -> that jail's pairs.
        Value::Array(a) => PyVal::List(a.iter().map(pairs_or_dict).collect()),
        other => PyVal::from_json(other),
    }
}

fn pairs_or_dict(v: &Value) -> PyVal {
    match v {
        Value::Array(p) if p.len() == 2 && p[0].is_string() => {
            PyVal::Tuple(vec![PyVal::from_json(&p[0]), pairs(&p[1])])
        }
        Value::Object(o) => PyVal::Dict(
            o.iter()
                .map(|(k, v)| (PyVal::Str(k.clone()), pairs(v)))
                .collect(),
        ),
        other => PyVal::from_json(other),
    }
}

/// A command's JSON value with the Python types fail2ban's server gives it (chosen from the
/// parsed command, [`super::cmd::parse`]).
pub fn typed(argv: &[String], v: &Value) -> PyVal {
    use super::cmd::{Command, JailGet, JailSet};
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    match (super::cmd::parse(&words), v) {
        (Ok(Command::Status | Command::StatusAll { .. } | Command::StatusJail { .. }), _) => {
            pairs(v)
        }
        (
            Ok(
                Command::GetJail {
                    op: Ok(JailGet::Datepattern),
                    ..
                }
                | Command::SetJail {
                    op: Ok(JailSet::Datepattern(_)),
                    ..
                },
            ),
            Value::Array(a),
        ) => PyVal::Tuple(a.iter().map(PyVal::from_json).collect()),
        (Ok(Command::Stats), Value::Object(o)) => PyVal::Dict(
            o.iter()
                .map(|(k, v)| {
                    let t = match v {
                        Value::Array(a) => PyVal::Tuple(a.iter().map(PyVal::from_json).collect()),
                        other => PyVal::from_json(other),
                    };
                    (PyVal::Str(k.clone()), t)
                })
                .collect(),
        ),
        _ => PyVal::from_json(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn argv(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn framing_by_first_byte() {
        assert!(!is_f2b_start(b'{') && !is_f2b_start(b' ') && !is_f2b_start(b'\n'));
        assert!(!is_f2b_start(b'[') && !is_f2b_start(0xff));
        for p in [
            &pickle::encode(&PyVal::None)[..],
            CLOSE,
            b"cos\nsystem\n",
            b"(lp0\n",
        ] {
            assert!(is_f2b_start(p[0]), "{p:?}");
        }
    }

    #[test]
    fn requests() {
        let p = pickle::encode(&PyVal::List(vec![
            PyVal::Str("set".into()),
            PyVal::Str("sshd".into()),
            PyVal::Str("maxretry".into()),
            PyVal::Int(3),
        ]));
        assert_eq!(
            decode_request(&p).unwrap(),
            Message::Command(argv(&["set", "sshd", "maxretry", "3"]))
        );
        assert_eq!(decode_request(CLOSE).unwrap(), Message::Close);
        let reload = pickle::encode(&PyVal::List(vec![
            PyVal::Str("reload".into()),
            PyVal::Str("--all".into()),
            PyVal::List(vec![PyVal::Str("--unban".into())]),
            PyVal::List(vec![PyVal::List(vec![PyVal::Str("add".into())])]),
        ]));
        assert_eq!(
            decode_request(&reload).unwrap(),
            Message::Command(argv(&["reload", "--unban", "--all"]))
        );
        let nested = pickle::encode(&PyVal::List(vec![
            PyVal::Str("echo".into()),
            PyVal::List(vec![]),
        ]));
        assert!(decode_request(&nested).is_err());
        assert!(decode_request(&pickle::encode(&PyVal::Str("ping".into()))).is_err());
    }

    #[test]
    fn replies_are_typed_like_fail2bans() {
        let st = json!([["Number of jail", 1], ["Jail list", "sshd"]]);
        assert_eq!(
            typed(&argv(&["status"]), &st),
            PyVal::List(vec![
                PyVal::Tuple(vec![PyVal::Str("Number of jail".into()), PyVal::Int(1)]),
                PyVal::Tuple(vec![
                    PyVal::Str("Jail list".into()),
                    PyVal::Str("sshd".into())
                ]),
            ])
        );
        let js = typed(
            &argv(&["status", "sshd"]),
            &crate::control::testutil::jail_status(),
        );
        let PyVal::List(top) = js else { panic!() };
        let PyVal::Tuple(filter) = &top[0] else {
            panic!()
        };
        let PyVal::List(inner) = &filter[1] else {
            panic!()
        };
        assert!(matches!(&inner[2], PyVal::Tuple(p) if matches!(&p[1], PyVal::List(_))));
        assert!(matches!(
            typed(&argv(&["get", "j", "datepattern"]), &json!([null, "x"])),
            PyVal::Tuple(_)
        ));
        assert_eq!(
            message_of(&exception_for("Sorry but the jail 'x' does not exist")),
            "Sorry but the jail 'x' does not exist"
        );
        assert_eq!(
            message_of(&exception_for(&crate::control::proto::invalid_command())),
            "Sorry but the command is invalid"
        );
        assert_eq!(
            message_of(&exception_for("Invalid command")),
            "Invalid command"
        );
    }

    #[tokio::test]
    async fn frames_split_anywhere() {
        let mut data = b"abc".to_vec();
        data.extend_from_slice(END);
        data.extend_from_slice(b"next");
        for cut in 1..data.len() {
            let (a, b) = data.split_at(cut);
            let reader =
                tokio::io::BufReader::with_capacity(4, std::io::Cursor::new([a, b].concat()));
            let mut reader = reader;
            let mut buf = Vec::new();
            assert_eq!(
                read_frame(&mut reader, &mut buf, 100, 100).await.unwrap(),
                Frame::Complete
            );
            assert_eq!(buf, b"abc");
            let mut rest = Vec::new();
            assert_eq!(
                read_frame(&mut reader, &mut rest, 100, 100).await.unwrap(),
                Frame::Eof
            );
            assert_eq!(rest, b"next");
        }
        let mut reader = tokio::io::BufReader::new(std::io::Cursor::new(vec![b'x'; 1000]));
        let mut buf = Vec::new();
        assert_eq!(
            read_frame(&mut reader, &mut buf, 100, 100).await.unwrap(),
            Frame::TooLong
        );
    }

    /// What Python 3's pickle writes for `['set', 'sshd', 'banip', '1.2.3.4']` (protocols 2 and
    /// 4/5: fail2ban's client uses HIGHEST_PROTOCOL) and the like.
    const PY2: &[u8] = b"\x80\x02]q\x00(X\x03\x00\x00\x00setq\x01X\x04\x00\x00\x00sshdq\x02X\x05\x00\x00\x00banipq\x03X\x07\x00\x00\x001.2.3.4q\x04e.";
    const PY4: &[u8] = b"\x80\x04\x95$\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x03set\x94\x8c\x04sshd\x94\x8c\x05banip\x94\x8c\x071.2.3.4\x94e.";

    #[test]
    fn bulk_pickle_prefixes() {
        assert!(bulk_pickle_prefix(PY2));
        assert!(bulk_pickle_prefix(PY4));
        // Only the first bytes are needed.
        assert!(bulk_pickle_prefix(&PY4[..40]));
        assert!(!bulk_pickle_prefix(&PY4[..30]));
        let un = pickle::encode(&PyVal::List(
            ["set", "web", "unbanip", "192.0.2.1"]
                .map(|w| PyVal::Str(w.into()))
                .to_vec(),
        ));
        assert!(bulk_pickle_prefix(&un));
        for other in [
            vec!["set", "sshd", "bantime", "1"],
            vec!["get", "sshd", "banip"],
            vec!["set", "", "banip"],
            vec!["banip", "sshd", "set"],
        ] {
            let p = pickle::encode(&PyVal::List(
                other.iter().map(|w| PyVal::Str(w.to_string())).collect(),
            ));
            assert!(!bulk_pickle_prefix(&p), "{other:?}");
        }
        // Protocol 0 (not what fail2ban's client sends): not recognised, the usual limit holds.
        assert!(!bulk_pickle_prefix(
            b"(lp0\nVset\np1\naVsshd\np2\naVbanip\np3\na."
        ));
        // A global before the words is never followed.
        assert!(!bulk_pickle_prefix(b"\x80\x02cos\nsystem\nq\x00"));
    }

    #[tokio::test]
    async fn a_bulk_ban_frame_may_exceed_the_usual_limit() {
        let mut words = vec!["set".to_string(), "sshd".into(), "banip".into()];
        words.extend((0..20_000).map(|i| format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)));
        let bulk = pickle::encode(&PyVal::List(words.into_iter().map(PyVal::Str).collect()));
        assert!(bulk.len() > 65_536);
        let mut framed = bulk.clone();
        framed.extend_from_slice(END);
        let mut reader = tokio::io::BufReader::new(std::io::Cursor::new(framed.clone()));
        let mut buf = Vec::new();
        assert_eq!(
            read_frame(&mut reader, &mut buf, 65_536, 48 << 20)
                .await
                .unwrap(),
            Frame::Complete
        );
        assert_eq!(buf, bulk);
        // Over the bulk limit too: refused.
        let mut reader = tokio::io::BufReader::new(std::io::Cursor::new(framed));
        let mut buf = Vec::new();
        assert_eq!(
            read_frame(&mut reader, &mut buf, 65_536, 200_000)
                .await
                .unwrap(),
            Frame::TooLong
        );
        // Any other request keeps the usual limit.
        let mut other = pickle::encode(&PyVal::List(vec![
            PyVal::Str("set".into()),
            PyVal::Str("sshd".into()),
            PyVal::Str("addignoreip".into()),
            PyVal::Str("x".repeat(70_000)),
        ]));
        other.extend_from_slice(END);
        let mut reader = tokio::io::BufReader::new(std::io::Cursor::new(other));
        let mut buf = Vec::new();
        assert_eq!(
            read_frame(&mut reader, &mut buf, 65_536, 48 << 20)
                .await
                .unwrap(),
            Frame::TooLong
        );
    }
}
