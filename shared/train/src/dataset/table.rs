//! Reading one CSV table: the header, the column resolution, and each row into an
//! [`Example`] or a counted skip (the streaming loop behind [`super::read_csv`]).

use super::*;

pub(super) fn read_table<R: Read>(
    reader: R,
    join: Option<&TagTable>,
    opts: &CsvOptions,
) -> Result<(Vec<Example>, LoadReport)> {
    opts.validate()?;
    let spec = ColumnSpec::parse(&opts.columns)?;
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
    // The first bytes, kept to detect the layout and then read again.
    let mut prefix = Vec::new();
    let mut error = None;
    let mut complete = false;
    while prefix.len() < SNIFF_BYTES as usize {
        let mut chunk = [0u8; 1 << 14];
        let want = chunk.len().min(SNIFF_BYTES as usize - prefix.len());
        match buffered.read(&mut chunk[..want]) {
            Ok(0) => {
                complete = true;
                break;
            }
            Ok(n) => prefix.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let (delimiter, delimiter_detected) = match opts.delimiter.byte() {
        Some(d) => (d, false),
        None => (format::detect_delimiter(&prefix, complete), true),
    };
    let has_header = !opts.no_header;
    let sample_source = prefix.clone();
    let source = Replay {
        prefix: std::io::Cursor::new(prefix),
        error,
        rest: buffered,
    };
    let mut quotes = QuoteCheck::new(source, delimiter);
    if !has_header {
        quotes = quotes.without_header();
    }
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(has_header)
        .from_reader(quotes);

    let header = if has_header {
        let header = csv
            .byte_headers()
            .map_err(|e| Error::CsvRow { row: 0, source: e })?
            .clone();
        if header.is_empty() || header.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
            return Err(Error::EmptyCsv);
        }
        Some(header)
    } else {
        None
    };
    let columns = resolve_columns(header.as_ref(), spec.as_ref())?;
    let layout = match (join, &header) {
        (Some(_), _) => Layout::StackSample,
        (None, Some(h)) if is_bigquery(h) => Layout::BigQuery,
        _ => Layout::Table,
    };
    let missing = |column: &'static str| Error::MissingColumn {
        column,
        header: header
            .as_ref()
            .map_or_else(|| "none".to_owned(), header_text),
    };
    let text_cols = match (columns.text, columns.title, columns.body) {
        (Some(t), _, _) => TextColumns::Text(t),
        (None, None, None) => return Err(missing("text")),
        (None, title, body) => TextColumns::TitleBody(title, body),
    };
    let (tag_source, tag_format, tag_separator, tag_format_detected) = match join {
        Some(table) => (
            TagSource::Joined(columns.id.ok_or_else(|| missing("id"))?, table),
            None,
            None,
            false,
        ),
        None => {
            let tags_col = columns.tags.ok_or_else(|| missing("tags"))?;
            let (format, detected) = match opts.tag_format {
                TagFormat::Auto if opts.tag_separator == ',' => {
                    let fallback = if layout == Layout::BigQuery {
                        TagFormat::Pipe
                    } else {
                        TagFormat::Comma
                    };
                    let cells =
                        sample_cells(&sample_source, complete, delimiter, has_header, tags_col);
                    let format =
                        format::detect_tag_format(cells.iter().map(String::as_str), fallback);
                    (format, true)
                }
                f => (f, false),
            };
            let custom = (format == TagFormat::Auto).then_some(opts.tag_separator);
            let split = TagSplit::of(format, opts.tag_separator);
            let format = match custom {
                Some(c) => TagFormat::of_separator(c).unwrap_or(TagFormat::Auto),
                None => format,
            };
            let custom = custom.filter(|&c| TagFormat::of_separator(c).is_none());
            (
                TagSource::Column(tags_col, split),
                Some(format),
                custom,
                detected,
            )
        }
    };
    let format_report = FormatReport {
        layout,
        delimiter: format::delimiter_of(delimiter),
        delimiter_detected,
        header: has_header,
        columns: columns.describe(header.as_ref(), join.is_some()),
        tag_format,
        tag_separator,
        tag_format_detected,
    };
    let header_len = header.as_ref().map_or(usize::MAX, |h| h.len());
    let latin1 = join.is_some();

    let mut examples = Vec::new();
    let mut report = LoadReport {
        format: Some(format_report),
        ..LoadReport::default()
    };
    let mut record = csv::ByteRecord::new();
    // Rows per tag; bounded by `max_tags + 1` entries: the file is rejected when it grows past that.
    let mut distinct: HashMap<String, u64> = HashMap::new();
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
        match parse_row(&record, header_len, &tag_source, &text_cols, latin1, opts) {
            Ok(example) => {
                for tag in &example.tags {
                    if let Some(n) = distinct.get_mut(tag.as_str()) {
                        *n += 1;
                        continue;
                    }
                    if distinct.len() == opts.max_tags {
                        return Err(Error::TooManyTags {
                            limit: opts.max_tags,
                            tag: tag.clone(),
                            row,
                        });
                    }
                    distinct.insert(tag.clone(), 1);
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
    report.warnings = mis_split_warnings(&distinct, report.rows_used);
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    Ok((examples, report))
}

fn parse_row(
    record: &csv::ByteRecord,
    header_len: usize,
    tag_source: &TagSource,
    text_cols: &TextColumns,
    latin1: bool,
    opts: &CsvOptions,
) -> std::result::Result<Example, SkipReason> {
    if record.len() > header_len {
        return Err(SkipReason::MalformedRow);
    }
    let field = |i: usize| record.get(i).ok_or(SkipReason::MissingField);
    let text_field = |i: usize| -> std::result::Result<Cow<'_, str>, SkipReason> {
        let bytes = field(i)?;
        if bytes.len() > opts.max_text_bytes {
            return Err(SkipReason::TextTooLong);
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Cow::Borrowed(s.trim())),
            Err(_) if latin1 => Ok(Cow::Owned(decode(bytes, true).trim().to_owned())),
            Err(_) => Err(SkipReason::InvalidUtf8),
        }
    };
    let mut raw_tags: Vec<String> = Vec::new();
    match tag_source {
        TagSource::Column(i, split) => {
            let cell = std::str::from_utf8(field(*i)?).map_err(|_| SkipReason::InvalidUtf8)?;
            split.split(cell, &mut raw_tags);
        }
        TagSource::Joined(i, table) => {
            if let Some(tags) = table.by_id.get(field(*i)?.trim_ascii()) {
                raw_tags.extend(tags.iter().cloned());
            }
        }
    }
    let text = match *text_cols {
        TextColumns::Text(i) => text_field(i)?.into_owned(),
        TextColumns::TitleBody(title, body) => {
            let title = title.map(text_field).transpose()?.unwrap_or_default();
            let body = body.map(text_field).transpose()?.unwrap_or_default();
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
    for tag in raw_tags {
        if !tags.contains(&tag) {
            if tags.len() == MAX_TAGS_PER_ROW {
                return Err(SkipReason::TooManyTags);
            }
            tags.push(tag);
        }
    }
    if tags.is_empty() {
        return Err(SkipReason::NoTags);
    }
    Ok(Example { tags, text })
}
