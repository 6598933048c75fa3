//! Training data from CSV: one question per row, with its tags.
//!
//! The reader streams records one at a time (the `csv` crate), finds its columns by name, and
//! keeps going past rows it cannot use: each is skipped and counted by reason with the first few
//! row numbers, so an upload with a handful of bad rows still trains and the report says which.
//! It fails only when the file as a whole is unusable: no header, a required column missing, an
//! I/O error, a quote that swallows the rest of the file or merges rows ([`quotes`]), more
//! distinct tags than [`CsvOptions::max_tags`], no usable row, or more bad rows than
//! [`CsvOptions::max_bad_fraction`].
//!
//! Accepted layouts (column names case-insensitive, any order, other columns ignored):
//! `tags,text`; the origin's `tags,original_tags,text`; `tags,title,body` (title and body joined
//! with a space, used when there is no `text` column). Text is returned as found (HTML included);
//! cleaning it is `tagger_core::text`'s job.

mod quotes;

use std::collections::HashSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::limits::{DEFAULT_MAX_TAGS, MAX_TAGS_PER_ROW};
use crate::error::{Error, Result};
use quotes::{QuoteCheck, QuoteProblem};

/// How to read a training CSV.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvOptions {
    /// Separates the tags inside the `tags` field: `,` (the default, in a quoted field) or `|`
    /// (Amazon Comprehend's multi-label format).
    pub tag_separator: char,
    /// The largest share of data rows that may be skipped before the whole file is rejected.
    pub max_bad_fraction: f64,
    /// Rows whose text is longer than this many bytes are skipped (counted as `TextTooLong`).
    pub max_text_bytes: usize,
    /// The file is rejected as soon as it holds more distinct tags than this. A limit, not a
    /// model choice: not recorded, so it never changes a version.
    #[serde(skip_serializing, default = "default_max_tags")]
    pub max_tags: usize,
}

fn default_max_tags() -> usize {
    DEFAULT_MAX_TAGS
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            tag_separator: ',',
            max_bad_fraction: 0.10,
            max_text_bytes: 1 << 20,
            max_tags: DEFAULT_MAX_TAGS,
        }
    }
}

impl CsvOptions {
    pub fn validate(&self) -> Result<()> {
        if matches!(self.tag_separator, '"' | '\n' | '\r') || self.tag_separator.is_alphanumeric() {
            return Err(Error::config(
                "tag_separator",
                format!(
                    "{:?} cannot separate tags: use punctuation such as ',' or '|'",
                    self.tag_separator
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.max_bad_fraction) {
            return Err(Error::config(
                "max_bad_fraction",
                format!(
                    "{} is not a fraction between 0 and 1",
                    self.max_bad_fraction
                ),
            ));
        }
        if self.max_text_bytes == 0 {
            return Err(Error::config("max_text_bytes", "0 would skip every row"));
        }
        Ok(())
    }
}

/// One usable row: its tags (trimmed, non-empty, de-duplicated, in file order) and its text.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    pub tags: Vec<String>,
    pub text: String,
}

/// Why a row was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SkipReason {
    /// The row has fewer fields than it needs (the `tags` or text column is absent).
    MissingField,
    /// The row has more fields than the header: usually an unquoted comma in the text.
    MalformedRow,
    /// A needed field is not valid UTF-8.
    InvalidUtf8,
    /// The text is longer than [`CsvOptions::max_text_bytes`].
    TextTooLong,
    /// The text is empty or only whitespace.
    EmptyText,
    /// The `tags` field holds no tag.
    NoTags,
    /// The `tags` field holds more than [`MAX_TAGS_PER_ROW`] tags.
    TooManyTags,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::MissingField => "missing field",
            SkipReason::MalformedRow => "more fields than the header",
            SkipReason::InvalidUtf8 => "invalid utf-8",
            SkipReason::TextTooLong => "text too long",
            SkipReason::EmptyText => "empty text",
            SkipReason::NoTags => "no tags",
            SkipReason::TooManyTags => "more than 100 tags",
        })
    }
}

/// How many rows were skipped for one reason, and the first few of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkipCount {
    pub reason: SkipReason,
    pub count: u64,
    /// Up to [`LoadReport::FIRST_ROWS`] 1-based data row numbers (the header is row 0).
    pub first_rows: Vec<u64>,
}

/// What [`read_csv`] did with the rows it read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub rows_read: u64,
    pub rows_used: u64,
    /// One entry per reason that occurred, in [`SkipReason`] order.
    pub skipped: Vec<SkipCount>,
}

impl LoadReport {
    pub const FIRST_ROWS: usize = 5;

    pub fn rows_skipped(&self) -> u64 {
        self.skipped.iter().map(|s| s.count).sum()
    }

    pub fn count(&self, reason: SkipReason) -> u64 {
        self.skipped
            .iter()
            .find(|s| s.reason == reason)
            .map_or(0, |s| s.count)
    }

    fn skip(&mut self, reason: SkipReason, row: u64) {
        let at = match self.skipped.binary_search_by(|s| s.reason.cmp(&reason)) {
            Ok(at) => at,
            Err(at) => {
                self.skipped.insert(
                    at,
                    SkipCount {
                        reason,
                        count: 0,
                        first_rows: Vec::new(),
                    },
                );
                at
            }
        };
        let entry = &mut self.skipped[at];
        entry.count += 1;
        if entry.first_rows.len() < Self::FIRST_ROWS {
            entry.first_rows.push(row);
        }
    }

    /// The skipped rows in one line, e.g. `2 empty text (rows 3, 9); 1 no tags (row 4)`.
    pub fn skipped_summary(&self) -> String {
        if self.skipped.is_empty() {
            return "none".to_string();
        }
        let parts: Vec<String> = self
            .skipped
            .iter()
            .map(|s| {
                let rows: Vec<String> = s.first_rows.iter().map(u64::to_string).collect();
                let more = if s.count > s.first_rows.len() as u64 {
                    ", ..."
                } else {
                    ""
                };
                let noun = if s.first_rows.len() == 1 {
                    "row"
                } else {
                    "rows"
                };
                format!(
                    "{} {} ({noun} {}{more})",
                    s.count,
                    s.reason,
                    rows.join(", ")
                )
            })
            .collect();
        parts.join("; ")
    }

    /// E.g. `read 120 rows, used 117; skipped: 2 empty text (rows 3, 9); 1 no tags (row 4)`.
    pub fn summary(&self) -> String {
        format!(
            "read {} rows, used {}; skipped: {}",
            self.rows_read,
            self.rows_used,
            self.skipped_summary()
        )
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// Where the text comes from.
enum TextColumns {
    Text(usize),
    /// `title` and/or `body`, joined with a space.
    TitleBody(Option<usize>, Option<usize>),
}

/// Reads a training CSV (see the module docs), streaming.
pub fn read_csv<R: Read>(reader: R, opts: &CsvOptions) -> Result<(Vec<Example>, LoadReport)> {
    opts.validate()?;
    let mut buffered = BufReader::with_capacity(1 << 16, reader);
    // A UTF-8 byte order mark would otherwise become part of the first column's name.
    let starts_with_bom = buffered
        .fill_buf()
        .map_err(|e| Error::CsvRow {
            row: 0,
            source: e.into(),
        })?
        .starts_with(b"\xEF\xBB\xBF");
    if starts_with_bom {
        buffered.consume(3);
    }
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(QuoteCheck::new(buffered, b','));

    let header = csv
        .byte_headers()
        .map_err(|e| Error::CsvRow { row: 0, source: e })?
        .clone();
    if header.is_empty() || header.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
        return Err(Error::EmptyCsv);
    }
    let header_text = || {
        header
            .iter()
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect::<Vec<_>>()
            .join(",")
    };
    let column = |name: &str| {
        header
            .iter()
            .position(|f| f.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
    };
    let tags_col = column("tags").ok_or_else(|| Error::MissingColumn {
        column: "tags",
        header: header_text(),
    })?;
    let text_cols = match (column("text"), column("title"), column("body")) {
        (Some(t), _, _) => TextColumns::Text(t),
        (None, None, None) => {
            return Err(Error::MissingColumn {
                column: "text",
                header: header_text(),
            })
        }
        (None, title, body) => TextColumns::TitleBody(title, body),
    };

    let mut examples = Vec::new();
    let mut report = LoadReport::default();
    let mut record = csv::ByteRecord::new();
    // Bounded by `max_tags + 1` entries: the file is rejected when it grows past that.
    let mut distinct: HashSet<String> = HashSet::new();
    loop {
        let row = report.rows_read + 1;
        let more = csv.read_byte_record(&mut record);
        // The check reads ahead with the reader: a merge it found ends the run before any
        // merged row is used.
        match csv.get_ref().problem {
            Some(QuoteProblem::Merged { row, lines, line }) => {
                return Err(Error::MergedRows { row, lines, line })
            }
            Some(QuoteProblem::Unclosed { row, lines }) => {
                return Err(Error::UnclosedQuote { row, lines })
            }
            None => {}
        }
        match more {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(Error::CsvRow { row, source: e }),
        }
        report.rows_read = row;
        match parse_row(&record, header.len(), tags_col, &text_cols, opts) {
            Ok(example) => {
                for tag in &example.tags {
                    if !distinct.contains(tag.as_str()) {
                        if distinct.len() == opts.max_tags {
                            return Err(Error::TooManyTags {
                                limit: opts.max_tags,
                                tag: tag.clone(),
                                row,
                            });
                        }
                        distinct.insert(tag.clone());
                    }
                }
                report.rows_used += 1;
                examples.push(example);
            }
            Err(reason) => report.skip(reason, row),
        }
    }
    if report.rows_used == 0 {
        return Err(Error::NoUsableRows {
            total: report.rows_read,
            skipped: report.skipped_summary(),
        });
    }
    let bad = report.rows_read - report.rows_used;
    if bad as f64 > opts.max_bad_fraction * report.rows_read as f64 {
        return Err(Error::TooManyBadRows {
            bad,
            total: report.rows_read,
            percent: 100.0 * bad as f64 / report.rows_read as f64,
            limit_percent: 100.0 * opts.max_bad_fraction,
            skipped: report.skipped_summary(),
        });
    }
    Ok((examples, report))
}

/// [`read_csv`] on a file.
pub fn read_csv_path(path: &Path, opts: &CsvOptions) -> Result<(Vec<Example>, LoadReport)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    read_csv(file, opts)
}

fn parse_row(
    record: &csv::ByteRecord,
    header_len: usize,
    tags_col: usize,
    text_cols: &TextColumns,
    opts: &CsvOptions,
) -> std::result::Result<Example, SkipReason> {
    if record.len() > header_len {
        return Err(SkipReason::MalformedRow);
    }
    let field = |i: usize| record.get(i).ok_or(SkipReason::MissingField);
    let text_field = |i: usize| -> std::result::Result<&str, SkipReason> {
        let bytes = field(i)?;
        if bytes.len() > opts.max_text_bytes {
            return Err(SkipReason::TextTooLong);
        }
        std::str::from_utf8(bytes)
            .map(str::trim)
            .map_err(|_| SkipReason::InvalidUtf8)
    };
    let tags_raw = std::str::from_utf8(field(tags_col)?).map_err(|_| SkipReason::InvalidUtf8)?;
    let text = match *text_cols {
        TextColumns::Text(i) => text_field(i)?.to_string(),
        TextColumns::TitleBody(title, body) => {
            let title = title.map(text_field).transpose()?.unwrap_or("");
            let body = body.map(text_field).transpose()?.unwrap_or("");
            if title.len() + body.len() + 1 > opts.max_text_bytes {
                return Err(SkipReason::TextTooLong);
            }
            match (title.is_empty(), body.is_empty()) {
                (false, false) => format!("{title} {body}"),
                _ => format!("{title}{body}"),
            }
        }
    };
    if text.is_empty() {
        return Err(SkipReason::EmptyText);
    }
    let mut tags: Vec<String> = Vec::new();
    for tag in tags_raw
        .split(opts.tag_separator)
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if !tags.iter().any(|t| t == tag) {
            if tags.len() == MAX_TAGS_PER_ROW {
                return Err(SkipReason::TooManyTags);
            }
            tags.push(tag.to_string());
        }
    }
    if tags.is_empty() {
        return Err(SkipReason::NoTags);
    }
    Ok(Example { tags, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(data: &[u8]) -> Result<(Vec<Example>, LoadReport)> {
        read_csv(data, &CsvOptions::default())
    }

    fn lenient() -> CsvOptions {
        CsvOptions {
            max_bad_fraction: 1.0,
            ..CsvOptions::default()
        }
    }

    fn tags(e: &Example) -> Vec<&str> {
        e.tags.iter().map(String::as_str).collect()
    }

    #[test]
    fn reads_tags_and_text_columns() {
        let (ex, report) =
            read(b"tags,text\n\"python,pandas\",How do I merge?\njava,Why NPE?\n").unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(tags(&ex[0]), ["python", "pandas"]);
        assert_eq!(ex[0].text, "How do I merge?");
        assert_eq!(
            report,
            LoadReport {
                rows_read: 2,
                rows_used: 2,
                skipped: vec![]
            }
        );
    }

    #[test]
    fn rejects_empty_file() {
        assert!(matches!(read(b""), Err(Error::EmptyCsv)));
        assert!(matches!(read(b"\n\n"), Err(Error::EmptyCsv)));
    }

    #[test]
    fn rejects_header_only_file_as_no_usable_rows() {
        assert!(matches!(
            read(b"tags,text\n"),
            Err(Error::NoUsableRows { total: 0, .. })
        ));
    }

    #[test]
    fn rejects_csv_without_text_column() {
        let err = read(b"tags,question\na,b\n").unwrap_err();
        assert!(
            matches!(err, Error::MissingColumn { column: "text", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("tags,question"));
    }

    #[test]
    fn rejects_csv_without_tags_column() {
        assert!(matches!(
            read(b"label,text\na,b\n"),
            Err(Error::MissingColumn { column: "tags", .. })
        ));
    }

    #[test]
    fn finds_columns_case_insensitively_in_any_order() {
        let (ex, _) = read(b"Text , TAGS\nhello,greeting\n").unwrap();
        assert_eq!(tags(&ex[0]), ["greeting"]);
        assert_eq!(ex[0].text, "hello");
    }

    #[test]
    fn rejects_unclosed_quote_that_swallows_the_rest() {
        let data = b"tags,text\na,fine\nb,\"never closed\nc,swallowed\nd,swallowed too\n";
        let err = read_csv(&data[..], &lenient()).unwrap_err();
        assert!(
            matches!(err, Error::UnclosedQuote { row: 2, lines: 3 }),
            "{err}"
        );
    }

    #[test]
    fn unclosed_quote_in_tags_column_is_an_error_not_a_panic() {
        let data = b"tags,text\n\"a,b,fine\nc,swallowed\n";
        let err = read_csv(&data[..], &lenient()).unwrap_err();
        assert!(matches!(err, Error::UnclosedQuote { row: 1, .. }), "{err}");
    }

    #[test]
    fn unclosed_quote_on_the_last_line_is_an_error() {
        // No line break after it: the reader took it for an ordinary last row.
        let data = b"tags,text\na,fine\nb,also fine\nc,\"never closed";
        let err = read_csv(&data[..], &lenient()).unwrap_err();
        assert!(
            matches!(err, Error::UnclosedQuote { row: 3, lines: 0 }),
            "{err}"
        );
        assert!(err.to_string().contains("row 3"), "{err}");
    }

    #[test]
    fn quote_that_merges_rows_in_the_middle_is_an_error() {
        // Row 2's quote is closed by row 4's opening one: rows 2-4 were read as one row.
        let data = b"tags,text\na,fine\nb,\"opened\nc,merged\nd,\"quoted\" text\ne,after\n";
        let err = read_csv(&data[..], &lenient()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::MergedRows {
                    row: 2,
                    lines: 2,
                    line: 5
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("row 2"), "{err}");
    }

    #[test]
    fn legal_quoting_still_reads() {
        let data =
            b"tags,text\n\"a,b\",\"two\nlines with \"\"quotes\"\"\"\r\nc,say \"hi\"\r\nd,\"last\"";
        let (ex, report) = read(data).unwrap();
        assert_eq!(report.rows_used, 3);
        assert_eq!(ex[0].text, "two\nlines with \"quotes\"");
        assert_eq!(ex[2].text, "last");
    }

    #[test]
    fn too_many_distinct_tags_fail_at_the_first_one_past_the_limit() {
        // 100,000 rows of one distinct tag each (3.4 MB): rejected at row 10,001.
        let mut data = String::from("tags,text\n");
        for i in 0..100_000 {
            data.push_str(&format!("tag{i},question number {i}\n"));
        }
        let started = std::time::Instant::now();
        let err = read(data.as_bytes()).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::TooManyTags {
                    limit: 10_000,
                    row: 10_001,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("max_tags"), "{err}");
        assert!(started.elapsed().as_secs() < 5);
        let opts = CsvOptions {
            max_tags: 100_000,
            ..CsvOptions::default()
        };
        assert_eq!(read_csv(data.as_bytes(), &opts).unwrap().0.len(), 100_000);
    }

    #[test]
    fn rows_with_more_than_100_tags_are_skipped() {
        // 20 rows of 10,000 distinct tags each: nothing usable, and the report says why.
        let mut data = String::from("tags,text\n");
        for r in 0..20 {
            let tags: Vec<String> = (0..10_000).map(|t| format!("t{r}x{t}")).collect();
            data.push_str(&format!("\"{}\",question {r}\n", tags.join(",")));
        }
        let err = read(data.as_bytes()).unwrap_err();
        assert!(
            matches!(&err, Error::NoUsableRows { total: 20, skipped } if skipped.contains("20 more than 100 tags")),
            "{err}"
        );
        let hundred: Vec<String> = (0..100).map(|t| format!("t{t}")).collect();
        let ok = format!("tags,text\n\"{}\",fine\n", hundred.join(","));
        assert_eq!(read(ok.as_bytes()).unwrap().0[0].tags.len(), 100);
    }

    #[test]
    fn stray_quote_inside_an_unquoted_field_is_kept() {
        let (ex, _) = read(b"tags,text\nhw,My 24\" monitor flickers\n").unwrap();
        assert_eq!(ex[0].text, "My 24\" monitor flickers");
    }

    #[test]
    fn skips_invalid_utf8_field_and_counts_it() {
        let data = b"tags,text\na,good\nb,bad \xff\xfe bytes\nc,good too\n";
        let (ex, report) = read_csv(&data[..], &lenient()).unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(
            report.skipped,
            vec![SkipCount {
                reason: SkipReason::InvalidUtf8,
                count: 1,
                first_rows: vec![2]
            }]
        );
    }

    #[test]
    fn strips_byte_order_mark() {
        let (ex, _) = read(b"\xEF\xBB\xBFtags,text\na,hello\n").unwrap();
        assert_eq!(ex[0].text, "hello");
        let (ex, _) = read(b"\xEF\xBB\xBF\"tags\",\"text\"\na,hello\n").unwrap();
        assert_eq!(tags(&ex[0]), ["a"]);
    }

    #[test]
    fn reads_crlf_line_endings_and_multiline_quoted_fields() {
        let (ex, report) = read(b"tags,text\r\na,first\r\n\"b,c\",\"two\r\nlines\"\r\n").unwrap();
        assert_eq!(report.rows_used, 2);
        assert_eq!(ex[0].text, "first");
        assert_eq!(tags(&ex[1]), ["b", "c"]);
        assert_eq!(ex[1].text, "two\r\nlines");
    }

    #[test]
    fn skips_rows_with_blank_tags() {
        let data = b"tags,text\n,no tags\n\" , ,\",only separators\na,fine\n";
        let (ex, report) = read_csv(&data[..], &lenient()).unwrap();
        assert_eq!(ex.len(), 1);
        assert_eq!(report.count(SkipReason::NoTags), 2);
        assert_eq!(report.skipped[0].first_rows, [1, 2]);
    }

    #[test]
    fn skips_a_ten_megabyte_text_as_too_long() {
        let mut data = b"tags,text\na,short\nb,".to_vec();
        data.extend(std::iter::repeat_n(b'x', 10 << 20));
        data.extend(b"\nc,short too\n");
        let (ex, report) = read_csv(&data[..], &lenient()).unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(
            report.skipped,
            vec![SkipCount {
                reason: SkipReason::TextTooLong,
                count: 1,
                first_rows: vec![2]
            }]
        );
        let roomy = CsvOptions {
            max_text_bytes: 11 << 20,
            ..lenient()
        };
        let (ex, _) = read_csv(&data[..], &roomy).unwrap();
        assert_eq!(ex[1].text.len(), 10 << 20);
    }

    #[test]
    fn accepts_a_file_where_every_row_has_the_same_tag() {
        let (ex, _) = read(b"tags,text\npython,a\npython,b\npython,c\n").unwrap();
        assert!(ex.iter().all(|e| tags(e) == ["python"]));
    }

    #[test]
    fn keeps_a_tag_seen_only_once() {
        let (ex, _) = read(b"tags,text\npython,a\n\"python,rare\",b\n").unwrap();
        assert_eq!(tags(&ex[1]), ["python", "rare"]);
    }

    #[test]
    fn fails_when_no_row_is_usable() {
        let err = read(b"tags,text\n,x\na,\n").unwrap_err();
        assert!(matches!(err, Error::NoUsableRows { total: 2, .. }), "{err}");
        assert!(err.to_string().contains("no tags (row 1)"), "{err}");
    }

    #[test]
    fn fails_when_too_many_rows_are_bad() {
        let err = read(b"tags,text\na,ok\n,x\n,y\na,ok\n").unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooManyBadRows {
                    bad: 2,
                    total: 4,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn joins_title_and_body_when_there_is_no_text_column() {
        let (ex, _) =
            read(b"Title,Body,Tags\nHow?,<p>Like this</p>,html\nOnly title,,x\n").unwrap();
        assert_eq!(ex[0].text, "How? <p>Like this</p>");
        assert_eq!(ex[1].text, "Only title");
    }

    #[test]
    fn ignores_the_origins_original_tags_column() {
        let (ex, _) = read(b"tags,original_tags,text\n\"keras\",\"keras,python\",Why?\n").unwrap();
        assert_eq!(tags(&ex[0]), ["keras"]);
        assert_eq!(ex[0].text, "Why?");
    }

    #[test]
    fn splits_tags_on_a_configured_separator_trimming_and_deduplicating() {
        let opts = CsvOptions {
            tag_separator: '|',
            ..CsvOptions::default()
        };
        let (ex, _) = read_csv(&b"tags,text\n a | b||a ,x\n"[..], &opts).unwrap();
        assert_eq!(tags(&ex[0]), ["a", "b"]);
    }

    #[test]
    fn counts_ragged_rows_instead_of_failing() {
        let data = b"tags,text\na,fine\nb,has, a comma\nc\nd,fine\n";
        let (ex, report) = read_csv(&data[..], &lenient()).unwrap();
        assert_eq!(ex.len(), 2);
        assert_eq!(report.count(SkipReason::MalformedRow), 1);
        assert_eq!(report.count(SkipReason::MissingField), 1);
        assert_eq!(report.summary(), "read 4 rows, used 2; skipped: 1 missing field (row 3); 1 more fields than the header (row 2)");
    }

    #[test]
    fn reports_io_error_with_row_number() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let data = b"tags,text\na,one\nb,two\n";
                if self.0 >= data.len() {
                    return Err(std::io::Error::other("disk on fire"));
                }
                let n = (data.len() - self.0).min(buf.len());
                buf[..n].copy_from_slice(&data[self.0..self.0 + n]);
                self.0 += n;
                Ok(n)
            }
        }
        let err = read_csv(Failing(0), &CsvOptions::default()).unwrap_err();
        assert!(matches!(err, Error::CsvRow { row: 3, .. }), "{err}");
        assert!(err.to_string().contains("disk on fire"));
    }

    #[test]
    fn validate_rejects_bad_options() {
        let bad = |o: CsvOptions| matches!(o.validate(), Err(Error::InvalidConfig { .. }));
        assert!(bad(CsvOptions {
            max_bad_fraction: f64::NAN,
            ..CsvOptions::default()
        }));
        assert!(bad(CsvOptions {
            max_bad_fraction: 1.5,
            ..CsvOptions::default()
        }));
        assert!(bad(CsvOptions {
            max_text_bytes: 0,
            ..CsvOptions::default()
        }));
        assert!(bad(CsvOptions {
            tag_separator: '"',
            ..CsvOptions::default()
        }));
        assert!(CsvOptions::default().validate().is_ok());
    }

    #[test]
    fn reads_shared_datasets_without_skips() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");
        for name in ["cooking", "so-titles"] {
            let path = Path::new(dir).join(name).join("train.csv");
            if !path.exists() {
                eprintln!("skipping: {} is absent", path.display());
                return;
            }
            let (ex, report) = read_csv_path(&path, &CsvOptions::default()).unwrap();
            assert_eq!(report.rows_skipped(), 0, "{name}: {report}");
            assert_eq!(ex.len() as u64, report.rows_read);
        }
    }

    #[test]
    fn read_csv_path_reports_missing_file() {
        let err =
            read_csv_path(Path::new("/nonexistent/x.csv"), &CsvOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
    }
}
