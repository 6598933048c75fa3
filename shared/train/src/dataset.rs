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
//! with a space, used when there is no `text` column), which includes BigQuery's
//! `posts_questions` export; Kaggle StackSample's `Questions.csv` joined with its `Tags.csv`
//! ([`read_stacksample`]); a headerless file with [`CsvOptions::columns`]. The field delimiter
//! (comma, tab, semicolon) and the way tag cells list tags ([`TagFormat`]) are detected from the
//! first rows unless set, and reported in [`LoadReport::format`]; tags that still look
//! mis-split give [`LoadReport::warnings`]. Text is returned as found (HTML included); cleaning
//! it is `tagger_core::text`'s job.

mod columns;
mod files;
mod format;
mod quotes;
mod report;
mod table;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::limits::{DEFAULT_MAX_TAGS, MAX_TAGS_PER_ROW};
use crate::error::{Error, Result};
use format::{ColumnRef, ColumnSpec, TagSplit};
pub use format::{Delimiter, FormatReport, Layout, TagFormat};
use quotes::{QuoteCheck, QuoteProblem};

use columns::*;
pub use files::{read_csv_path, read_path, stacksample_files};
pub use report::{LoadReport, SkipCount, SkipReason};
use table::read_table;

/// How to read a training CSV.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsvOptions {
    /// Separates the tags inside the `tags` field when [`CsvOptions::tag_format`] is `auto`: `,`
    /// (the default) lets the format be detected; another character is used as given.
    pub tag_separator: char,
    /// How tag cells list tags; `auto` detects it from the first rows.
    #[serde(default, skip_serializing_if = "is_default")]
    pub tag_format: TagFormat,
    /// What separates fields; `auto` detects comma, tab or semicolon from the first rows.
    #[serde(default, skip_serializing_if = "is_default")]
    pub delimiter: Delimiter,
    /// The file has no header row: its columns are [`CsvOptions::columns`], else `tags,text`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub no_header: bool,
    /// Which column is which: names in file order (`tags,text`, `_` for a column to pass over)
    /// or `role=column` pairs (`tags=3,text=1`, `tags=Labels`); roles are tags, text, title,
    /// body, id. Empty: the header's names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// The largest share of data rows that may be skipped before the whole file is rejected.
    pub max_bad_fraction: f64,
    /// Rows whose text is longer than this many bytes are skipped (counted as `TextTooLong`).
    pub max_text_bytes: usize,
    /// The file is rejected as soon as it holds more distinct tags than this. A limit, not a
    /// model choice: not recorded, so it never changes a version.
    #[serde(skip_serializing, default = "default_max_tags")]
    pub max_tags: usize,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn default_max_tags() -> usize {
    DEFAULT_MAX_TAGS
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            tag_separator: ',',
            tag_format: TagFormat::Auto,
            delimiter: Delimiter::Auto,
            no_header: false,
            columns: Vec::new(),
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
        if let Some(ColumnSpec::Pairs(pairs)) = ColumnSpec::parse(&self.columns)? {
            if self.no_header && pairs.iter().any(|(_, c)| matches!(c, ColumnRef::Name(_))) {
                return Err(Error::config(
                    "columns",
                    "a file without a header row has no column names: number the columns from 1 (tags=2,text=1)",
                ));
            }
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

/// Where the text comes from.
enum TextColumns {
    Text(usize),
    /// `title` and/or `body`, joined with a space.
    TitleBody(Option<usize>, Option<usize>),
}

/// Where the tags come from.
enum TagSource<'a> {
    Column(usize, TagSplit),
    /// The tags table's rows for the value of this (id) column.
    Joined(usize, &'a TagTable),
}

/// The tags of Kaggle StackSample's `Tags.csv` (`Id,Tag`, one row per tag), by question id.
#[derive(Clone, Debug, Default)]
pub struct TagTable {
    by_id: HashMap<Vec<u8>, Vec<String>>,
    /// Data rows read.
    pub rows: u64,
}

impl TagTable {
    /// Reads an `Id,Tag` table (column names case-insensitive; `Tags` is taken for `Tag`).
    /// Rows without an id or a tag are passed over.
    pub fn read<R: Read>(reader: R) -> Result<TagTable> {
        let mut csv = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(BufReader::with_capacity(1 << 16, reader));
        let header = csv
            .byte_headers()
            .map_err(|e| Error::CsvRow { row: 0, source: e })?
            .clone();
        let header = strip_bom(&header);
        let find = |names: &[&str]| {
            header.iter().position(|f| {
                names
                    .iter()
                    .any(|n| f.trim_ascii().eq_ignore_ascii_case(n.as_bytes()))
            })
        };
        let text = || header_text(&header);
        let id = find(&["id"]).ok_or_else(|| Error::MissingColumn {
            column: "id",
            header: text(),
        })?;
        let tag = find(&["tag", "tags"]).ok_or_else(|| Error::MissingColumn {
            column: "tag",
            header: text(),
        })?;
        let mut table = TagTable::default();
        let mut record = csv::ByteRecord::new();
        loop {
            let row = table.rows + 1;
            match csv.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(Error::CsvRow { row, source: e }),
            }
            table.rows = row;
            let (Some(i), Some(t)) = (record.get(id), record.get(tag)) else {
                continue;
            };
            let t = decode(t, true);
            let t = t.trim();
            if t.is_empty() || i.trim_ascii().is_empty() {
                continue;
            }
            let tags = table.by_id.entry(i.trim_ascii().to_vec()).or_default();
            if !tags.iter().any(|x| x == t) {
                tags.push(t.to_owned());
            }
        }
        Ok(table)
    }

    /// Questions with at least one tag.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

fn strip_bom(header: &csv::ByteRecord) -> csv::ByteRecord {
    header
        .iter()
        .enumerate()
        .map(|(i, f)| {
            if i == 0 {
                f.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(f)
            } else {
                f
            }
        })
        .collect()
}

/// The header's names, comma-separated whatever the file's delimiter.
fn header_text(header: &csv::ByteRecord) -> String {
    header
        .iter()
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect::<Vec<_>>()
        .join(",")
}

/// A field as text: UTF-8, or with `latin1` bytes that are not UTF-8 read as ISO-8859-1 (what
/// Kaggle's StackSample is written in); empty otherwise.
fn decode(bytes: &[u8], latin1: bool) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) if latin1 => Cow::Owned(bytes.iter().map(|&b| b as char).collect()),
        Err(_) => Cow::Borrowed(""),
    }
}

/// Bytes looked at to detect the delimiter and the tag format.
const SNIFF_BYTES: u64 = 1 << 20;
/// Tag cells looked at to detect the tag format.
const SNIFF_ROWS: usize = 2000;

/// Reads a training CSV (see the module docs), streaming.
pub fn read_csv<R: Read>(reader: R, opts: &CsvOptions) -> Result<(Vec<Example>, LoadReport)> {
    read_table(reader, None, opts)
}

/// Reads Kaggle StackSample's `Questions.csv` (`Id`, `Title`, `Body`, ...; ISO-8859-1 bytes
/// are accepted) with the tags of each question from `tags` (its `Tags.csv`), joined on `Id`.
/// A question without tags is skipped as [`SkipReason::NoTags`].
pub fn read_stacksample<R: Read>(
    questions: R,
    tags: &TagTable,
    opts: &CsvOptions,
) -> Result<(Vec<Example>, LoadReport)> {
    read_table(questions, Some(tags), opts)
}

/// A reader that gives back the bytes already taken from it, then an error met while taking
/// them (so it surfaces at the row where it happened), then the rest.
struct Replay<R> {
    prefix: std::io::Cursor<Vec<u8>>,
    error: Option<std::io::Error>,
    rest: R,
}

impl<R: Read> Read for Replay<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.prefix.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.rest.read(buf)
    }
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
            (report.rows_read, report.rows_used, report.skipped),
            (2, 2, vec![])
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
        for name in ["cooking", "so-titles", "so-nlp"] {
            let path = Path::new(dir).join(name).join("train.csv");
            if !path.exists() {
                eprintln!("skipping: {} is absent", path.display());
                return;
            }
            let (ex, report) = read_csv_path(&path, &CsvOptions::default()).unwrap();
            assert_eq!(report.rows_skipped(), 0, "{name}: {report}");
            assert_eq!(ex.len() as u64, report.rows_read);
            // Detection finds what the files are, and nothing looks mis-split.
            let format = report.format.unwrap();
            assert_eq!(format.delimiter, Delimiter::Comma, "{name}");
            assert_eq!(format.tag_format, Some(TagFormat::Comma), "{name}");
            assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
        }
    }

    #[test]
    fn a_tsv_reads_instead_of_missing_its_tags_column() {
        let (ex, report) = read(b"tags\ttext\npython|pandas\tHow, then, do I merge?\n").unwrap();
        assert_eq!(tags(&ex[0]), ["python", "pandas"]);
        assert_eq!(ex[0].text, "How, then, do I merge?");
        let f = report.format.unwrap();
        assert_eq!(
            (f.delimiter, f.tag_format),
            (Delimiter::Tab, Some(TagFormat::Pipe))
        );
        assert!(f.to_string().contains("tab-delimited (detected)"), "{f}");
    }

    #[test]
    fn set_formats_win_over_detection() {
        let data = b"tags;text\na|b;x\n";
        let set = |o: CsvOptions| read_csv(&data[..], &o).unwrap();
        let (ex, report) = set(CsvOptions {
            delimiter: Delimiter::Semicolon,
            tag_format: TagFormat::Comma,
            ..CsvOptions::default()
        });
        assert_eq!(tags(&ex[0]), ["a|b"]);
        let f = report.format.unwrap();
        assert!(!f.delimiter_detected && !f.tag_format_detected);
        let (ex, report) = set(CsvOptions {
            tag_separator: '/',
            ..CsvOptions::default()
        });
        assert_eq!(tags(&ex[0]), ["a|b"]);
        assert_eq!(report.format.unwrap().tag_separator, Some('/'));
    }

    #[test]
    fn columns_map_roles_to_header_names_or_numbers() {
        let data = b"Question,Labels\nWhy?,\"a,b\"\n";
        let with = |columns: &[&str]| {
            let opts = CsvOptions {
                columns: columns.iter().map(|c| c.to_string()).collect(),
                ..CsvOptions::default()
            };
            read_csv(&data[..], &opts)
        };
        for columns in [
            &["tags=Labels", "text=question"][..],
            &["tags=2", "text=1"],
            &["text", "tags"],
        ] {
            let (ex, _) = with(columns).unwrap();
            assert_eq!(
                (tags(&ex[0]), ex[0].text.as_str()),
                (vec!["a", "b"], "Why?")
            );
        }
        let err = with(&["tags=Label", "text=1"]).unwrap_err();
        assert!(
            err.to_string().contains("no column named \"label\""),
            "{err}"
        );
        let err = read(&data[..]).unwrap_err();
        assert!(matches!(err, Error::MissingColumn { .. }), "{err}");
    }

    #[test]
    fn quote_problems_name_the_same_rows_without_a_header() {
        let opts = CsvOptions {
            no_header: true,
            max_bad_fraction: 1.0,
            ..CsvOptions::default()
        };
        let data = b"a,fine\nb,\"never closed\nc,swallowed\nd,swallowed too\n";
        let err = read_csv(&data[..], &opts).unwrap_err();
        assert!(
            matches!(err, Error::UnclosedQuote { row: 2, lines: 3 }),
            "{err}"
        );
        let data = b"a,fine\nb,\"opened\nc,merged\nd,\"quoted\" text\ne,after\n";
        let err = read_csv(&data[..], &opts).unwrap_err();
        assert!(matches!(err, Error::MergedRows { row: 2, .. }), "{err}");
    }

    #[test]
    fn headerless_rows_all_count() {
        let opts = CsvOptions {
            no_header: true,
            ..CsvOptions::default()
        };
        let (ex, report) = read_csv(&b"a,first\n\"b,c\",second\n"[..], &opts).unwrap();
        assert_eq!(report.rows_read, 2);
        assert_eq!(tags(&ex[1]), ["b", "c"]);
    }

    proptest::proptest! {
        /// Whatever the bytes (biased to the characters detection looks at), reading ends in
        /// rows or an error, never a panic, with or without a header.
        #[test]
        fn any_text_reads_or_fails_without_panicking(
            data in "[a-c,;|\t\"\\[\\]<> '\n\r]{0,300}",
            no_header in proptest::bool::ANY,
        ) {
            let opts = CsvOptions {
                no_header,
                max_bad_fraction: 1.0,
                ..CsvOptions::default()
            };
            if let Ok((examples, report)) = read_csv(data.as_bytes(), &opts) {
                proptest::prop_assert_eq!(examples.len() as u64, report.rows_used);
                proptest::prop_assert!(report.format.is_some());
                proptest::prop_assert!(examples.iter().all(|e| !e.tags.is_empty()
                    && e.tags.iter().all(|t| !t.is_empty() && t.trim() == t)));
            }
        }
    }

    #[test]
    fn read_csv_path_reports_missing_file() {
        let err =
            read_csv_path(Path::new("/nonexistent/x.csv"), &CsvOptions::default()).unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
    }
}
