//! How a file is laid out: its field delimiter, its columns and how its tag cells list tags.
//! Each is either set ([`CsvOptions`](super::CsvOptions)) or detected from the first rows, and
//! what was used is reported ([`FormatReport`]) so a wrong guess is visible before it trains.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How the tags of one row are written in its tag cell.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TagFormat {
    /// Detected from the first rows (the default).
    #[default]
    Auto,
    /// `python,pandas`
    Comma,
    /// `python|pandas` (BigQuery's `posts_questions`, Amazon Comprehend) and `|python|pandas|`.
    Pipe,
    /// `python;pandas`
    Semicolon,
    /// `python pandas`
    Space,
    /// `<python><pandas>`: the Stack Overflow data dump's `Tags` attribute.
    Angle,
    /// `['python', 'pandas']` or `["python", "pandas"]`: a Python or JSON list literal.
    List,
}

impl TagFormat {
    fn name(self) -> &'static str {
        match self {
            TagFormat::Auto => "auto",
            TagFormat::Comma => "comma",
            TagFormat::Pipe => "pipe",
            TagFormat::Semicolon => "semicolon",
            TagFormat::Space => "space",
            TagFormat::Angle => "angle",
            TagFormat::List => "list",
        }
    }

    /// The format that `tag_separator` `c` names, if any.
    pub fn of_separator(c: char) -> Option<TagFormat> {
        match c {
            ',' => Some(TagFormat::Comma),
            '|' => Some(TagFormat::Pipe),
            ';' => Some(TagFormat::Semicolon),
            ' ' => Some(TagFormat::Space),
            _ => None,
        }
    }
}

impl fmt::Display for TagFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What separates the fields of a row.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Delimiter {
    /// Detected from the first rows (the default).
    #[default]
    Auto,
    Comma,
    Tab,
    Semicolon,
}

impl Delimiter {
    pub fn byte(self) -> Option<u8> {
        match self {
            Delimiter::Auto => None,
            Delimiter::Comma => Some(b','),
            Delimiter::Tab => Some(b'\t'),
            Delimiter::Semicolon => Some(b';'),
        }
    }

    fn of_byte(b: u8) -> Delimiter {
        match b {
            b'\t' => Delimiter::Tab,
            b';' => Delimiter::Semicolon,
            _ => Delimiter::Comma,
        }
    }
}

impl fmt::Display for Delimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Delimiter::Auto => "auto",
            Delimiter::Comma => "comma",
            Delimiter::Tab => "tab",
            Delimiter::Semicolon => "semicolon",
        })
    }
}

/// Which known layout the file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// A table with a tags column and a text (or title and body) column.
    Table,
    /// Kaggle's StackSample: `Questions.csv` (Id, Title, Body, ...) joined on `Id` with
    /// `Tags.csv` (Id, Tag; one row per tag).
    StackSample,
    /// An export of BigQuery's `bigquery-public-data.stackoverflow.posts_questions`.
    BigQuery,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Layout::Table => "table",
            Layout::StackSample => "Kaggle StackSample (Questions.csv + Tags.csv on Id)",
            Layout::BigQuery => "BigQuery posts_questions export",
        })
    }
}

/// How a file was read: what was set, what was detected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FormatReport {
    pub layout: Layout,
    pub delimiter: Delimiter,
    pub delimiter_detected: bool,
    pub header: bool,
    /// Which column is which, e.g. `tags=Tags, text=Title + Body`.
    pub columns: String,
    /// `None` when the tags come one per row from a tags table ([`Layout::StackSample`]).
    pub tag_format: Option<TagFormat>,
    /// A separator other than the named formats' (`tag_separator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_separator: Option<char>,
    pub tag_format_detected: bool,
}

impl fmt::Display for FormatReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how = |detected: bool| if detected { "detected" } else { "set" };
        if self.layout != Layout::Table {
            write!(f, "{}; ", self.layout)?;
        }
        write!(
            f,
            "{}-delimited ({}), {}; columns {}; tags ",
            self.delimiter,
            how(self.delimiter_detected),
            if self.header {
                "header row"
            } else {
                "no header"
            },
            self.columns
        )?;
        match (self.tag_format, self.tag_separator) {
            (None, _) => f.write_str("one per row of the tags table"),
            (_, Some(c)) => write!(f, "separated by {c:?} (set)"),
            (Some(t), None) => write!(f, "{t} ({})", how(self.tag_format_detected)),
        }
    }
}

/// How to split a tag cell, resolved from the options or the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TagSplit {
    Separator(char),
    Whitespace,
    Angle,
    List,
}

impl TagSplit {
    pub(super) fn of(format: TagFormat, separator: char) -> TagSplit {
        match format {
            TagFormat::Comma => TagSplit::Separator(','),
            TagFormat::Pipe => TagSplit::Separator('|'),
            TagFormat::Semicolon => TagSplit::Separator(';'),
            TagFormat::Space => TagSplit::Whitespace,
            TagFormat::Angle => TagSplit::Angle,
            TagFormat::List => TagSplit::List,
            TagFormat::Auto if separator == ' ' => TagSplit::Whitespace,
            TagFormat::Auto => TagSplit::Separator(separator),
        }
    }

    /// Pushes the tags of `cell` (trimmed, non-empty, possibly repeated) onto `out`.
    pub(super) fn split(self, cell: &str, out: &mut Vec<String>) {
        let mut push = |t: &str| {
            let t = t.trim();
            if !t.is_empty() {
                out.push(t.to_owned());
            }
        };
        match self {
            TagSplit::Separator(c) => cell.split(c).for_each(push),
            TagSplit::Whitespace => cell.split_whitespace().for_each(push),
            TagSplit::Angle => {
                // `<a><b>`; anything outside the brackets is a tag of its own, so a cell that is
                // not in this form still gives its words rather than nothing.
                cell.split(['<', '>']).for_each(push)
            }
            TagSplit::List => split_list(cell, &mut push),
        }
    }
}

/// The items of a Python or JSON list literal of strings (`['a', "b"]`), unquoted and with
/// `\` escapes resolved; bare items (`[a, b]`) are taken as written. A cell without brackets is
/// read as one comma-separated list.
fn split_list(cell: &str, push: &mut impl FnMut(&str)) {
    let inner = cell.trim();
    let inner = inner.strip_prefix(['[', '(']).unwrap_or(inner);
    let inner = inner.strip_suffix([']', ')']).unwrap_or(inner);
    let mut chars = inner.chars().peekable();
    let mut item = String::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        item.clear();
        match chars.peek().copied() {
            None => return,
            Some(q @ ('\'' | '"')) => {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                item.push(match e {
                                    'n' => '\n',
                                    't' => '\t',
                                    e => e,
                                });
                            }
                        }
                        c if c == q => break,
                        c => item.push(c),
                    }
                }
                // Up to the next comma.
                for c in chars.by_ref() {
                    if c == ',' {
                        break;
                    }
                }
            }
            Some(_) => {
                for c in chars.by_ref() {
                    if c == ',' {
                        break;
                    }
                    item.push(c);
                }
            }
        }
        push(&item);
    }
}

/// The tag format of a sample of tag cells (blank ones ignored): a list literal or the dump's
/// angle brackets when 4 in 5 cells are written so; else, of the separators `,` `|` `;` found
/// in the cells, the one that leaves the fewest distinct tags (ties in that order): the right
/// one folds the rows' combinations into the tags they share, a wrong one only cuts tags apart
/// (a tag holding `;`). Without any, whitespace when splitting on it leaves fewer distinct tags
/// than whole cells (space-separated lists share their tags; one multi-word label per row
/// does not); else `fallback` (every cell a single tag).
pub(super) fn detect_tag_format<'a>(
    cells: impl IntoIterator<Item = &'a str>,
    fallback: TagFormat,
) -> TagFormat {
    let cells: Vec<&str> = cells
        .into_iter()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let n = cells.len();
    let most = |pred: &dyn Fn(&str) -> bool| {
        let k = cells.iter().filter(|c| pred(c)).count();
        n > 0 && k * 5 >= n * 4
    };
    if most(&|c| c.starts_with('[') && c.ends_with(']')) {
        return TagFormat::List;
    }
    if most(&|c| c.starts_with('<') && c.ends_with('>')) {
        return TagFormat::Angle;
    }
    let distinct = |split: TagSplit| {
        let mut tags = std::collections::HashSet::new();
        let mut out = Vec::new();
        for c in &cells {
            out.clear();
            split.split(c, &mut out);
            tags.extend(out.drain(..));
        }
        tags.len()
    };
    let mut best: Option<(usize, TagFormat)> = None;
    for (c, format) in [
        (',', TagFormat::Comma),
        ('|', TagFormat::Pipe),
        (';', TagFormat::Semicolon),
    ] {
        if !cells.iter().any(|x| x.contains(c)) {
            continue;
        }
        let k = distinct(TagSplit::Separator(c));
        if best.is_none_or(|(b, _)| k < b) {
            best = Some((k, format));
        }
    }
    if let Some((_, format)) = best {
        return format;
    }
    let whole = cells.iter().collect::<std::collections::HashSet<_>>().len();
    if cells.iter().any(|c| c.contains(char::is_whitespace))
        && distinct(TagSplit::Whitespace) < whole
    {
        return TagFormat::Space;
    }
    fallback
}

/// The field delimiter of a file's first bytes: of comma, tab and semicolon, the one that
/// splits the first record into the most known column names (`tags`, `text`, `title`,
/// `body`), then gives the most records of the first record's width (at least 2). `complete`
/// says `prefix` is the whole file (else its last record may be cut). Comma when none fits.
pub(super) fn detect_delimiter(prefix: &[u8], complete: bool) -> u8 {
    let mut best: Option<((usize, usize), u8)> = None;
    for d in [b',', b'\t', b';'] {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(d)
            .flexible(true)
            .has_headers(false)
            .from_reader(prefix);
        let mut widths = Vec::new();
        let mut known = 0;
        for record in reader.byte_records().take(500) {
            let Ok(record) = record else { break };
            if widths.is_empty() {
                known = record
                    .iter()
                    .filter(|f| {
                        KNOWN_COLUMNS
                            .iter()
                            .any(|k| f.trim_ascii().eq_ignore_ascii_case(k.as_bytes()))
                    })
                    .count();
            }
            widths.push(record.len());
        }
        if !complete && widths.len() > 1 {
            widths.pop();
        }
        let Some(&first) = widths.first() else {
            continue;
        };
        if first < 2 {
            continue;
        }
        let same = widths.iter().filter(|&&w| w == first).count();
        // Shares in thousandths, so a longer sample does not outweigh a better fit.
        let score = (known, same * 1000 / widths.len());
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, d));
        }
    }
    best.map_or(b',', |(_, d)| d)
}

const KNOWN_COLUMNS: [&str; 4] = ["tags", "text", "title", "body"];

pub(super) fn delimiter_of(byte: u8) -> Delimiter {
    Delimiter::of_byte(byte)
}

/// `columns` as given: names in file order (`tags,text`; other names such as `_` or `id` are
/// read past), or `role=column` pairs where the column is a 1-based number or a header name
/// (`tags=3,text=1`, `tags=Labels,text=Question`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ColumnSpec {
    Names(Vec<String>),
    Pairs(Vec<(String, ColumnRef)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum ColumnRef {
    /// 0-based.
    Index(usize),
    Name(String),
}

/// The roles a column can have.
pub(super) const ROLES: [&str; 5] = ["tags", "text", "title", "body", "id"];

impl ColumnSpec {
    pub(super) fn parse(columns: &[String]) -> Result<Option<ColumnSpec>> {
        if columns.is_empty() {
            return Ok(None);
        }
        let bad = |m: String| Error::config("columns", m);
        let pairs = columns.iter().filter(|c| c.contains('=')).count();
        if pairs == 0 {
            let names: Vec<String> = columns.iter().map(|c| c.trim().to_lowercase()).collect();
            return Ok(Some(ColumnSpec::Names(names)));
        }
        if pairs != columns.len() {
            return Err(bad(format!(
                "{:?} mixes names in order with role=column pairs: use one form",
                columns.join(",")
            )));
        }
        let mut out: Vec<(String, ColumnRef)> = Vec::new();
        for c in columns {
            let (role, column) = c.split_once('=').unwrap_or((c, ""));
            let role = role.trim().to_lowercase();
            if !ROLES.contains(&role.as_str()) {
                return Err(bad(format!(
                    "unknown role {role:?} in {c:?} (roles: {})",
                    ROLES.join(", ")
                )));
            }
            if out.iter().any(|(r, _)| *r == role) {
                return Err(bad(format!("{role} is given twice")));
            }
            let column = column.trim();
            let column = match column.parse::<usize>() {
                Ok(0) => return Err(bad(format!("{c:?}: columns are numbered from 1"))),
                Ok(i) => ColumnRef::Index(i - 1),
                Err(_) if column.is_empty() => return Err(bad(format!("{c:?} names no column"))),
                Err(_) => ColumnRef::Name(column.to_lowercase()),
            };
            out.push((role, column));
        }
        Ok(Some(ColumnSpec::Pairs(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(split: TagSplit, cell: &str) -> Vec<String> {
        let mut out = Vec::new();
        split.split(cell, &mut out);
        out
    }

    #[test]
    fn splits_each_format() {
        assert_eq!(split(TagSplit::Separator('|'), "|a|b |"), ["a", "b"]);
        assert_eq!(split(TagSplit::Whitespace, " a  b\tc"), ["a", "b", "c"]);
        assert_eq!(split(TagSplit::Angle, "<c#><.net>"), ["c#", ".net"]);
        assert_eq!(
            split(TagSplit::List, r#"['php', "sql", 'it\'s', c++ ]"#),
            ["php", "sql", "it's", "c++"]
        );
        assert_eq!(split(TagSplit::List, "[]"), Vec::<String>::new());
        assert_eq!(split(TagSplit::List, r#"["a,b", "c"]"#), ["a,b", "c"]);
    }

    #[test]
    fn detects_tag_formats() {
        let d = |cells: &[&str]| detect_tag_format(cells.iter().copied(), TagFormat::Comma);
        assert_eq!(d(&["a,b", "c"]), TagFormat::Comma);
        assert_eq!(d(&["a|b", "c"]), TagFormat::Pipe);
        assert_eq!(d(&["a;b", "c"]), TagFormat::Semicolon);
        assert_eq!(d(&["<a><b>", "<c>"]), TagFormat::Angle);
        assert_eq!(d(&["['a', 'b']", "['c']"]), TagFormat::List);
        assert_eq!(d(&["a", "b", ""]), TagFormat::Comma);
        // A tag holding `;` does not make the file semicolon-separated.
        assert_eq!(d(&["a;x", "a;x,b", "b", "c,a;x"]), TagFormat::Comma);
        // One multi-word label per row is not a space-separated list.
        assert_eq!(
            d(&["machine learning", "deep learning", "machine learning"]),
            TagFormat::Comma
        );
        assert_eq!(d(&["a b", "b c", "a c", "c"]), TagFormat::Space);
        assert_eq!(
            detect_tag_format(["a", "b"], TagFormat::Pipe),
            TagFormat::Pipe
        );
    }

    #[test]
    fn detects_delimiters() {
        assert_eq!(detect_delimiter(b"tags,text\na,\"x\ty; z\"\n", true), b',');
        assert_eq!(
            detect_delimiter(b"title\ttags\nx, y; z\t['a']\n", true),
            b'\t'
        );
        assert_eq!(detect_delimiter(b"tags;text\n\"a,b\";x, y\n", true), b';');
        // No header: the consistent split wins.
        assert_eq!(
            detect_delimiter(b"a\tx, y\nb\tz, w, v\nc\tu\n", true),
            b'\t'
        );
        assert_eq!(detect_delimiter(b"just one column\n", true), b',');
    }

    #[test]
    fn parses_column_specs() {
        let s =
            |v: &[&str]| ColumnSpec::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&[]).unwrap(), None);
        assert_eq!(
            s(&["Tags", "_", "text"]).unwrap(),
            Some(ColumnSpec::Names(vec![
                "tags".into(),
                "_".into(),
                "text".into()
            ]))
        );
        assert_eq!(
            s(&["tags=3", "text=Question"]).unwrap(),
            Some(ColumnSpec::Pairs(vec![
                ("tags".into(), ColumnRef::Index(2)),
                ("text".into(), ColumnRef::Name("question".into()))
            ]))
        );
        for bad in [
            &["tags=0"][..],
            &["tags=1", "text"],
            &["label=1"],
            &["tags=1", "tags=2"],
        ] {
            assert!(s(bad).is_err(), "{bad:?}");
        }
    }
}
