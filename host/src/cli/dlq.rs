//! `watchtower dlq list|show|requeue|purge`: an operator's view of one handler's dead letters.

use anyhow::bail;
use clap::{Args, Subcommand};
use watchtower::redis::dlq::{self, Applied, DeadLetter, Selection};
use watchtower_events::{FIELD_DATA, dlq_key};

use super::RedisArgs;

/// Arguments of `dlq`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    /// What to do with the dead letters.
    #[command(subcommand)]
    pub command: DlqCommand,
}

/// The `dlq` subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List a handler's dead letters, oldest first.
    List(ListArgs),
    /// Show one dead letter: why it failed, where it came from, and all its fields.
    Show(ShowArgs),
    /// Re-drive dead letters to their handler, and to no other consumer group.
    ///
    /// Each dead letter moves to the handler's re-drive stream `{namespace}:redrive:{handler}`
    /// (with its original fields plus `redrive_stream` and `redrive_dlq_id`) and leaves the
    /// dead-letter stream in the same transaction. The handler picks it up while its host runs.
    Requeue(SelectArgs),
    /// Delete dead letters for good.
    ///
    /// `--all` deletes the handler's whole dead-letter stream.
    Purge(SelectArgs),
}

/// The handler whose dead letters a command is about, and where Redis is.
#[derive(Debug, Args)]
pub struct Target {
    /// Handler name, as in `[[handler]] name` of the config.
    #[arg(long, value_name = "NAME")]
    pub handler: String,
    #[command(flatten)]
    pub redis: RedisArgs,
}

/// Arguments of `dlq list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub target: Target,
    /// List at most this many (the oldest ones).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Print JSON (an array of dead letters) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `dlq show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub target: Target,
    /// Entry id in the dead-letter stream, as `dlq list` shows it.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `dlq requeue` and `dlq purge`.
#[derive(Debug, Args)]
pub struct SelectArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub select: Select,
}

/// Which dead letters: the given ids, or all of them.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct Select {
    /// Entry ids in the dead-letter stream, as `dlq list` shows them.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Every dead letter of the handler.
    #[arg(long)]
    pub all: bool,
}

impl Select {
    fn selection(self) -> Selection {
        if self.all {
            Selection::All
        } else {
            Selection::Ids(self.ids)
        }
    }
}

/// Runs a `dlq` subcommand.
pub async fn run(args: DlqArgs) -> anyhow::Result<()> {
    match args.command {
        DlqCommand::List(args) => list(args).await,
        DlqCommand::Show(args) => show(args).await,
        DlqCommand::Requeue(args) => requeue(args).await,
        DlqCommand::Purge(args) => purge(args).await,
    }
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let handler = &args.target.handler;
    let (mut conn, namespace) = args.target.redis.connect().await?;
    let count = usize::try_from(args.count).unwrap_or(usize::MAX);
    let letters = dlq::list(&mut conn, &namespace, handler, count).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&letters)?);
        return Ok(());
    }
    let key = dlq_key(&namespace, handler);
    if letters.is_empty() {
        println!("no dead letters in `{key}`");
        return Ok(());
    }
    print_table(&letters);
    let total = dlq::count(&mut conn, &namespace, handler).await?;
    if total > letters.len() {
        println!(
            "{} of {total} in `{key}` shown; use --count to see more",
            letters.len()
        );
    }
    Ok(())
}

/// One row per dead letter; the reason goes last because it is the one long column.
fn print_table(letters: &[DeadLetter]) {
    let rows: Vec<[String; 6]> = letters
        .iter()
        .map(|letter| {
            [
                letter.id.clone(),
                dash_if_empty(&letter.at),
                letter.attempts.to_string(),
                dash_if_empty(letter.event_type.as_deref().unwrap_or_default()),
                dash_if_empty(letter.event_id.as_deref().unwrap_or_default()),
                one_line(&letter.reason),
            ]
        })
        .collect();
    let header = ["ID", "AT", "ATTEMPTS", "EVENT_TYPE", "EVENT_ID", "REASON"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let [id, at, attempts, event_type, event_id, reason] = row;
        println!(
            "{id:<w0$}  {at:<w1$}  {attempts:>w2$}  {event_type:<w3$}  {event_id:<w4$}  {reason}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
        );
    }
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let handler = &args.target.handler;
    let (mut conn, namespace) = args.target.redis.connect().await?;
    let Some(letter) = dlq::show(&mut conn, &namespace, handler, &args.id).await? else {
        bail!(
            "no dead letter `{}` in `{}`",
            args.id,
            dlq_key(&namespace, handler)
        );
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&letter)?);
        return Ok(());
    }
    println!("id         {}", letter.id);
    println!("handler    {}", dash_if_empty(&letter.handler));
    println!("reason     {}", dash_if_empty(&letter.reason));
    println!("stream     {}", dash_if_empty(&letter.stream));
    println!("source id  {}", dash_if_empty(&letter.source_id));
    println!("attempts   {}", letter.attempts);
    println!("at         {}", dash_if_empty(&letter.at));
    println!("fields");
    let width = letter
        .fields
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    for (name, value) in &letter.fields {
        let text = String::from_utf8_lossy(value);
        match pretty_json(name, &text) {
            Some(pretty) => {
                println!("  {name}");
                for line in pretty.lines() {
                    println!("    {line}");
                }
            }
            None => println!("  {name:<width$}  {text}"),
        }
    }
    Ok(())
}

/// `data` holding a JSON object or array, pretty-printed; `None` for anything else.
fn pretty_json(name: &str, text: &str) -> Option<String> {
    if name != FIELD_DATA {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    (value.is_object() || value.is_array()).then(|| indent_json(text))
}

/// Valid JSON `text` laid out one member per line, two spaces per level, with its keys in
/// their original order (a round trip through `serde_json::Value` would sort them).
fn indent_json(text: &str) -> String {
    // Drop the whitespace between tokens first, so that `{ }` is seen as empty.
    let mut strings = Strings::default();
    let compact: Vec<char> = text
        .chars()
        .filter(|&c| strings.feed(c) || !c.is_whitespace())
        .collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = 0usize;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    let mut chars = compact.into_iter().peekable();
    while let Some(c) = chars.next() {
        if strings.feed(c) {
            out.push(c);
            continue;
        }
        match c {
            '{' | '[' => {
                out.push(c);
                match chars.next_if(|next| matches!(next, '}' | ']')) {
                    Some(close) => out.push(close),
                    None => {
                        depth += 1;
                        newline(&mut out, depth);
                    }
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            _ => out.push(c),
        }
    }
    out
}

/// Whether a scan of JSON text is inside a string literal.
#[derive(Default)]
struct Strings {
    inside: bool,
    escaped: bool,
}

impl Strings {
    /// Feeds the next character; true if it belongs to a string literal (quotes included).
    fn feed(&mut self, c: char) -> bool {
        if !self.inside {
            self.inside = c == '"';
            return self.inside;
        }
        if self.escaped {
            self.escaped = false;
        } else if c == '\\' {
            self.escaped = true;
        } else if c == '"' {
            self.inside = false;
        }
        true
    }
}

async fn requeue(args: SelectArgs) -> anyhow::Result<()> {
    let handler = &args.target.handler;
    let (mut conn, namespace) = args.target.redis.connect().await?;
    let applied = dlq::requeue(&mut conn, &namespace, handler, args.select.selection()).await?;
    report_missing(&applied, &namespace, handler)?;
    println!(
        "re-drove {} to `{}` (handled by `{handler}` only)",
        dead_letters(applied.count),
        dlq::redrive_key(&namespace, handler)
    );
    Ok(())
}

async fn purge(args: SelectArgs) -> anyhow::Result<()> {
    let handler = &args.target.handler;
    let (mut conn, namespace) = args.target.redis.connect().await?;
    let applied = dlq::purge(&mut conn, &namespace, handler, args.select.selection()).await?;
    report_missing(&applied, &namespace, handler)?;
    println!(
        "deleted {} from `{}`",
        dead_letters(applied.count),
        dlq_key(&namespace, handler)
    );
    Ok(())
}

/// Names the ids that were not there; fails when none of the given ids was.
fn report_missing(applied: &Applied, namespace: &str, handler: &str) -> anyhow::Result<()> {
    if applied.missing.is_empty() {
        return Ok(());
    }
    let key = dlq_key(namespace, handler);
    let missing = applied.missing.join(", ");
    if applied.count == 0 {
        bail!("no such dead letter in `{key}`: {missing}");
    }
    eprintln!("warning: not in `{key}` (skipped): {missing}");
    Ok(())
}

fn dead_letters(n: usize) -> String {
    if n == 1 {
        "1 dead letter".to_owned()
    } else {
        format!("{n} dead letters")
    }
}

fn dash_if_empty(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        one_line(s)
    }
}

/// `s` with control characters (a trap message's newlines) turned into spaces.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_indented_with_its_keys_in_order() {
        let text = r#"{"z":1, "a":{"s":"x\\\", y: {z} \"[ ]\""},"e":[],"o":{ },"l":[1,[2]]}"#;
        let pretty = pretty_json("data", text).unwrap();
        assert_eq!(
            pretty,
            r#"{
  "z": 1,
  "a": {
    "s": "x\\\", y: {z} \"[ ]\""
  },
  "e": [],
  "o": {},
  "l": [
    1,
    [
      2
    ]
  ]
}"#
        );
        let reparsed: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(
            reparsed,
            serde_json::from_str::<serde_json::Value>(text).unwrap()
        );
    }

    #[test]
    fn only_json_data_is_pretty_printed() {
        assert_eq!(pretty_json("data", "not json"), None);
        assert_eq!(pretty_json("data", "42"), None);
        assert_eq!(pretty_json("metadata", "{}"), None);
    }
}
