//! `ferroban top`: a live terminal dashboard of a running daemon, over its control socket.
//!
//! Each refresh sends one `top <seq>` request: the daemon answers from its metrics registry
//! (atomics and two small bounded tables, never the jails' own state) with one row per jail,
//! the top offenders and only the bans/unbans after `<seq>` — at most a few hundred, so a refresh
//! costs the daemon the same whatever its size. Bans and unbans made from here are the ordinary
//! `set <jail> banip|unbanip <address>` commands, after a confirmation.
//!
//! Keys: ↑/↓ (k/j) select a jail, Enter or `f` shows only its events and offenders, `a` shows all
//! again, `b` bans an address in the selected jail, `u` unbans one (the latest banned address of
//! the feed is offered), `p` or space pauses, `q` quits.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};
use serde_json::Value;

use crate::control::proto::{Request, Response};
use crate::metrics::feed::{FeedEvent, Snapshot};

/// Events kept on screen's feed (newest first).
const FEED_KEEP: usize = 200;

/// `ferroban top`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct TopArgs {
    /// Control socket of the daemon.
    #[arg(short = 's', long = "socket", default_value = crate::control::client::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// Print one frame as text and exit.
    #[arg(long)]
    pub once: bool,
    /// Print one snapshot as JSON and exit.
    #[arg(long, conflicts_with = "once")]
    pub json: bool,
    /// Size of the `--once` frame, COLUMNSxROWS (default: the terminal's, else 80x24).
    #[arg(long, value_name = "COLSxROWS", value_parser = parse_size)]
    pub size: Option<(u16, u16)>,
    /// Refresh interval in milliseconds.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub interval: u64,
    /// Show only this jail's events and offenders at start.
    #[arg(long)]
    pub jail: Option<String>,
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let (c, r) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?}: expected COLUMNSxROWS, e.g. 80x24"))?;
    let c: u16 = c.parse().map_err(|_| format!("{s:?}: bad column count"))?;
    let r: u16 = r.parse().map_err(|_| format!("{s:?}: bad row count"))?;
    if c < 40 || r < 10 {
        return Err(format!("{s:?}: at least 40x10"));
    }
    Ok((c, r))
}

/// Sends `argv` to the daemon at `socket`; its answer.
pub fn request(socket: &Path, argv: &[&str]) -> anyhow::Result<Result<Value, String>> {
    let mut s = UnixStream::connect(socket)
        .with_context(|| format!("cannot connect to the daemon at {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let req = Request::new(argv.iter().map(|a| a.to_string()).collect());
    s.write_all(req.to_line().as_bytes())?;
    let mut line = Vec::new();
    BufReader::new(&s)
        .read_until(b'\n', &mut line)
        .with_context(|| format!("no answer from {}", socket.display()))?;
    Response::parse(&line).map_err(|e| anyhow::anyhow!("bad answer from the daemon: {e}"))
}

/// One `top` request.
pub fn fetch(socket: &Path, since: u64) -> anyhow::Result<Snapshot> {
    let v = request(socket, &["top", &since.to_string()])?
        .map_err(|e| anyhow::anyhow!("the daemon refused `top`: {e}"))?;
    serde_json::from_value(v).context("unexpected `top` answer")
}

/// Runs `ferroban top`.
pub fn run(a: &TopArgs) -> anyhow::Result<u8> {
    if a.json {
        let snap = fetch(&a.socket, 0)?;
        println!("{}", serde_json::to_string_pretty(&snap)?);
        return Ok(0);
    }
    let mut app = App::new(a.socket.clone(), a.jail.clone());
    app.refresh()?;
    if a.once {
        let (w, h) = a
            .size
            .or_else(|| ratatui::crossterm::terminal::size().ok())
            .unwrap_or((80, 24));
        print!("{}", app.frame_text(w, h));
        return Ok(0);
    }
    let mut terminal = ratatui::init();
    let r = app.run(&mut terminal, Duration::from_millis(a.interval));
    ratatui::restore();
    r.map(|()| 0)
}

/// What the keyboard is doing.
#[derive(Debug, Clone, PartialEq)]
enum Mode {
    Normal,
    /// Typing an address to ban (`true`) or unban in `jail`.
    Input {
        ban: bool,
        jail: String,
        text: String,
    },
    /// Waiting for y/n.
    Confirm {
        ban: bool,
        jail: String,
        id: String,
    },
}

/// The dashboard's state.
pub struct App {
    socket: PathBuf,
    snap: Option<Snapshot>,
    /// When `snap` arrived (time left counts down between refreshes).
    snap_at: Instant,
    feed: VecDeque<FeedEvent>,
    seq: u64,
    table: TableState,
    filter: Option<String>,
    paused: bool,
    mode: Mode,
    message: String,
}

impl App {
    /// A dashboard of the daemon at `socket`, optionally showing only `jail`.
    pub fn new(socket: PathBuf, jail: Option<String>) -> Self {
        App {
            socket,
            snap: None,
            snap_at: Instant::now(),
            feed: VecDeque::new(),
            seq: 0,
            table: TableState::default().with_selected(Some(0)),
            filter: jail,
            paused: false,
            mode: Mode::Normal,
            message: String::new(),
        }
    }

    /// Asks the daemon for what changed.
    pub fn refresh(&mut self) -> anyhow::Result<()> {
        let s = fetch(&self.socket, self.seq)?;
        if s.seq < self.seq {
            // The daemon restarted: its numbering starts again.
            self.feed.clear();
        }
        self.seq = s.seq;
        for e in &s.events {
            self.feed.push_front(e.clone());
        }
        self.feed.truncate(FEED_KEEP);
        self.snap = Some(s);
        self.snap_at = Instant::now();
        Ok(())
    }

    fn now(&self) -> f64 {
        self.snap.as_ref().map_or(0.0, |s| s.now) + self.snap_at.elapsed().as_secs_f64()
    }

    fn selected_jail(&self) -> Option<String> {
        let s = self.snap.as_ref()?;
        s.jails.get(self.table.selected()?).map(|j| j.name.clone())
    }

    fn run(
        &mut self,
        terminal: &mut ratatui::DefaultTerminal,
        every: Duration,
    ) -> anyhow::Result<()> {
        let mut next = Instant::now() + every;
        loop {
            terminal.draw(|f| self.draw(f))?;
            let wait = next.saturating_duration_since(Instant::now());
            if event::poll(wait)? {
                if let Event::Key(k) = event::read()?
                    && k.kind != KeyEventKind::Release
                    && !self.key(k.code, k.modifiers)
                {
                    return Ok(());
                }
                continue;
            }
            next = Instant::now() + every;
            if !self.paused {
                match self.refresh() {
                    Ok(()) => {
                        if self.message.starts_with("daemon: ") {
                            self.message.clear();
                        }
                    }
                    Err(e) => self.message = format!("daemon: {e:#}"),
                }
            }
        }
    }

    /// Handles a key; false to quit.
    fn key(&mut self, code: KeyCode, mods: KeyModifiers) -> bool {
        if code == KeyCode::Char('c') && mods.contains(KeyModifiers::CONTROL) {
            return false;
        }
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Input {
                ban,
                jail,
                mut text,
            } => match code {
                KeyCode::Esc => self.message = "cancelled".into(),
                KeyCode::Enter => {
                    let id = text.trim().to_string();
                    if id.is_empty() {
                        self.message = "cancelled (no address)".into();
                    } else {
                        self.mode = Mode::Confirm { ban, jail, id };
                    }
                }
                KeyCode::Backspace => {
                    text.pop();
                    self.mode = Mode::Input { ban, jail, text };
                }
                KeyCode::Char(c) if !c.is_control() && text.len() < 64 => {
                    text.push(c);
                    self.mode = Mode::Input { ban, jail, text };
                }
                _ => self.mode = Mode::Input { ban, jail, text },
            },
            Mode::Confirm { ban, jail, id } => {
                if matches!(code, KeyCode::Char('y') | KeyCode::Char('Y')) {
                    let verb = if ban { "banip" } else { "unbanip" };
                    self.message = match request(&self.socket, &["set", &jail, verb, &id]) {
                        Ok(Ok(_)) => format!("{verb} {id} in {jail}: done"),
                        Ok(Err(e)) => format!("{verb} {id} in {jail}: {e}"),
                        Err(e) => format!("daemon: {e:#}"),
                    };
                    let _ = self.refresh();
                } else {
                    self.message = "cancelled".into();
                }
            }
            Mode::Normal => match code {
                KeyCode::Char('q') | KeyCode::Esc => return false,
                KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
                KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
                KeyCode::Enter | KeyCode::Char('f') => {
                    self.filter = self.selected_jail();
                }
                KeyCode::Char('a') => self.filter = None,
                KeyCode::Char('p') | KeyCode::Char(' ') => {
                    self.paused = !self.paused;
                    if !self.paused {
                        let _ = self.refresh();
                    }
                }
                KeyCode::Char('b') => {
                    if let Some(jail) = self.selected_jail() {
                        self.mode = Mode::Input {
                            ban: true,
                            jail,
                            text: String::new(),
                        };
                    }
                }
                KeyCode::Char('u') => {
                    if let Some(jail) = self.selected_jail() {
                        // Offer the latest address still banned in that jail, per the feed.
                        let text = self.latest_banned(&jail).unwrap_or_default();
                        self.mode = Mode::Input {
                            ban: false,
                            jail,
                            text,
                        };
                    }
                }
                _ => {}
            },
        }
        true
    }

    fn latest_banned(&self, jail: &str) -> Option<String> {
        let mut ended: Vec<&str> = Vec::new();
        for e in &self.feed {
            if e.jail != jail {
                continue;
            }
            if e.kind == "unban" {
                ended.push(&e.id);
            } else if !ended.contains(&e.id.as_str()) {
                return Some(e.id.clone());
            }
        }
        None
    }

    fn move_selection(&mut self, d: i32) {
        let n = self.snap.as_ref().map_or(0, |s| s.jails.len());
        if n == 0 {
            return;
        }
        let cur = self.table.selected().unwrap_or(0) as i32;
        self.table
            .select(Some((cur + d).clamp(0, n as i32 - 1) as usize));
    }

    /// The current frame as text, `w`×`h` (`--once`).
    pub fn frame_text(&mut self, w: u16, h: u16) -> String {
        let backend = ratatui::backend::TestBackend::new(w, h);
        let mut t = ratatui::Terminal::new(backend).expect("an in-memory terminal");
        t.draw(|f| self.draw(f)).expect("drawing in memory");
        let buf = t.backend().buffer();
        let mut out = String::new();
        for y in 0..h {
            let mut line = String::new();
            for x in 0..w {
                line.push_str(buf.cell((x, y)).map_or(" ", |c| c.symbol()));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    fn draw(&mut self, f: &mut Frame) {
        let area = f.area();
        let jails = self.snap.as_ref().map_or(0, |s| s.jails.len()) as u16;
        // The jail table gets what it needs, leaving at least 5 rows for the feed.
        let table_h = (jails + 3).min(area.height.saturating_sub(7)).max(4);
        let rows = Layout::default()
            .direction(Direction::Vertical)
            .constraints([
                Constraint::Length(1),
                Constraint::Length(table_h),
                Constraint::Min(3),
                Constraint::Length(1),
            ])
            .split(area);
        self.draw_header(f, rows[0]);
        self.draw_jails(f, rows[1]);
        let bottom = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Percentage(64), Constraint::Percentage(36)])
            .split(rows[2]);
        self.draw_feed(f, bottom[0]);
        self.draw_offenders(f, bottom[1]);
        self.draw_footer(f, rows[3]);
    }

    fn draw_header(&self, f: &mut Frame, area: Rect) {
        let (jails, banned) = self.snap.as_ref().map_or((0, 0), |s| {
            (
                s.jails.len(),
                s.jails.iter().map(|j| j.banned_current).sum::<i64>(),
            )
        });
        let clock = jiff::Timestamp::from_second(self.now() as i64)
            .map(|t| {
                t.to_zoned_datetime(jiff::tz::TimeZone::system())
                    .strftime("%H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default();
        let mut spans = vec![
            Span::styled("ferroban top", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!("  {jails} jails  {banned} banned  {clock}")),
        ];
        if let Some(j) = &self.filter {
            spans.push(Span::raw(format!("  filter: {j}")));
        }
        if self.paused {
            spans.push(Span::styled(
                "  PAUSED",
                Style::new().add_modifier(Modifier::REVERSED),
            ));
        }
        f.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn draw_jails(&mut self, f: &mut Frame, area: Rect) {
        let wide = area.width >= 140;
        // Minutes in the sparklines: what fits.
        let spark = if wide {
            30
        } else if area.width >= 100 {
            15
        } else {
            6
        };
        let rows: Vec<Row> = self
            .snap
            .as_ref()
            .map(|s| {
                s.jails
                    .iter()
                    .map(|j| {
                        let fpm = j.failures_per_minute.last().copied().unwrap_or(0);
                        let bpm = j.bans_per_minute.last().copied().unwrap_or(0);
                        Row::new(vec![
                            Cell::from(j.name.clone()),
                            Cell::from(format!(
                                "{fpm:>5} {}",
                                sparkline(&j.failures_per_minute, spark)
                            )),
                            Cell::from(format!(
                                "{bpm:>4} {}",
                                sparkline(&j.bans_per_minute, spark)
                            )),
                            Cell::from(format!("{:>6}", j.failed_current)),
                            Cell::from(format!("{:>6}", j.banned_current)),
                            Cell::from(format!("{:>9}", j.failed_total)),
                            Cell::from(format!("{:>8}", j.banned_total)),
                        ])
                    })
                    .collect()
            })
            .unwrap_or_default();
        let sw = spark as u16;
        let widths = [
            Constraint::Min(10),
            Constraint::Length(6 + sw),
            Constraint::Length(5 + sw),
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Length(9),
            Constraint::Length(8),
        ];
        let header = Row::new(vec![
            "Jail".to_string(),
            format!("Fail/min {spark}m"),
            "Bans/min".to_string(),
            "Failed".to_string(),
            "Banned".to_string(),
            "Fails tot".to_string(),
            "Bans tot".to_string(),
        ])
        .style(Style::new().add_modifier(Modifier::BOLD));
        let t = Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .block(Block::new().borders(Borders::TOP).title(" Jails "))
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .highlight_symbol(">");
        f.render_stateful_widget(t, area, &mut self.table);
    }

    fn shown(&self, jail: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| f == jail)
    }

    fn draw_feed(&self, f: &mut Frame, area: Rect) {
        let now = self.now();
        let lines: Vec<Line> = self
            .feed
            .iter()
            .filter(|e| self.shown(&e.jail))
            .take(area.height as usize)
            .map(|e| {
                let clock = jiff::Timestamp::from_second(e.time as i64)
                    .map(|t| {
                        t.to_zoned_datetime(jiff::tz::TimeZone::system())
                            .strftime("%H:%M:%S")
                            .to_string()
                    })
                    .unwrap_or_default();
                let left = match (e.kind.as_str(), e.end) {
                    ("ban", Some(end)) => fmt_left(end - now),
                    ("ban", None) => "permanent".into(),
                    _ => e.why.clone(),
                };
                let kind = if e.kind == "ban" { "BAN  " } else { "UNBAN" };
                let style = if e.kind == "ban" {
                    Style::new().add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                };
                Line::from(vec![
                    Span::raw(format!("{clock} ")),
                    Span::styled(kind, style),
                    Span::raw(format!(
                        " {:<12} {:<16} {left}",
                        truncate(&e.jail, 12),
                        e.id
                    )),
                ])
            })
            .collect();
        let title = if lines.is_empty() {
            " Recent bans/unbans (none yet) "
        } else {
            " Recent bans/unbans (time left) "
        };
        f.render_widget(
            Paragraph::new(lines).block(Block::new().borders(Borders::TOP).title(title)),
            area,
        );
    }

    fn draw_offenders(&self, f: &mut Frame, area: Rect) {
        let lines: Vec<Line> = self
            .snap
            .as_ref()
            .map(|s| {
                s.offenders
                    .iter()
                    .filter(|o| self.shown(&o.jail))
                    .map(|o| Line::raw(format!("{:>3} {:<16} {}", o.bans, o.id, o.jail)))
                    .collect()
            })
            .unwrap_or_default();
        f.render_widget(
            Paragraph::new(lines).block(
                Block::new()
                    .borders(Borders::TOP | Borders::LEFT)
                    .title(" Top offenders "),
            ),
            area,
        );
    }

    fn draw_footer(&self, f: &mut Frame, area: Rect) {
        let text = match &self.mode {
            Mode::Input { ban, jail, text } => format!(
                "{} address in {jail}: {text}_   (Enter: next, Esc: cancel)",
                if *ban { "Ban" } else { "Unban" }
            ),
            Mode::Confirm { ban, jail, id } => format!(
                "{} {id} in jail {jail}? (y/n)",
                if *ban { "Ban" } else { "Unban" }
            ),
            Mode::Normal if !self.message.is_empty() => self.message.clone(),
            Mode::Normal => "q quit  ↑↓ jail  f filter  a all  b ban  u unban  p pause".into(),
        };
        f.render_widget(
            Paragraph::new(text).style(Style::new().add_modifier(Modifier::REVERSED)),
            area,
        );
    }
}

/// The last `n` values as block characters, scaled to their maximum.
pub fn sparkline(values: &[u64], n: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let tail = &values[values.len().saturating_sub(n)..];
    let max = tail.iter().copied().max().unwrap_or(0);
    let mut s: String = std::iter::repeat_n(' ', n - tail.len()).collect();
    for &v in tail {
        s.push(if max == 0 {
            ' '
        } else if v == 0 {
            '·'
        } else {
            BARS[((v * 7).div_ceil(max)) as usize]
        });
    }
    s
}

fn fmt_left(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_the_maximum() {
        assert_eq!(sparkline(&[0, 0, 0], 3), "   ");
        assert_eq!(sparkline(&[0, 1, 7], 3), "·▂█");
        assert_eq!(sparkline(&[5], 3), "  █");
        assert_eq!(sparkline(&[1, 2, 3, 4], 2), "▇█");
    }

    #[test]
    fn time_left_reads_well() {
        assert_eq!(fmt_left(-3.0), "0s");
        assert_eq!(fmt_left(59.9), "59s");
        assert_eq!(fmt_left(600.0), "10m00s");
        assert_eq!(fmt_left(7260.0), "2h01m");
        assert_eq!(fmt_left(90_000.0), "1d01h");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("80x24"), Ok((80, 24)));
        assert_eq!(parse_size("200X50"), Ok((200, 50)));
        assert!(parse_size("10x5").is_err());
        assert!(parse_size("80").is_err());
    }
}
