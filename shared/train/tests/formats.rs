//! Each file layout users have, as a real file: rows of the shared datasets
//! (`../shared/data/so-titles`, the raw `so-nlp-libs` export) converted here into that layout,
//! read back with the defaults (detection), and compared with the originals.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use tagger_train::dataset::{self, CsvOptions, Delimiter, Example, Layout, LoadReport, TagFormat};

fn data_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")).to_path_buf()
}

/// so-titles' training rows as the canonical file holds them (comma-separated tags).
fn so_titles() -> Option<Vec<Example>> {
    let path = data_dir().join("so-titles/train.csv");
    if !path.exists() {
        eprintln!("skipping: {} is absent", path.display());
        return None;
    }
    let opts = CsvOptions {
        tag_format: TagFormat::Comma,
        ..CsvOptions::default()
    };
    Some(dataset::read_csv_path(&path, &opts).unwrap().0)
}

/// Rows of the raw so-nlp export (`spacy.csv`: Id, Title, Body, space-separated Tags).
struct Post {
    id: String,
    title: String,
    body: String,
    tags: Vec<String>,
}

fn so_nlp_posts() -> Option<Vec<Post>> {
    let path = data_dir().join("raw/so-nlp-libs/spacy.csv");
    if !path.exists() {
        eprintln!("skipping: {} is absent", path.display());
        return None;
    }
    let mut reader = csv::Reader::from_path(&path).unwrap();
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let (id, title, body, tags) = (col("Id"), col("Title"), col("Body"), col("Tags"));
    let posts = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            Post {
                id: r[id].to_owned(),
                title: r[title].trim().to_owned(),
                body: r[body].trim().to_owned(),
                tags: r[tags].split_whitespace().map(str::to_owned).collect(),
            }
        })
        .filter(|p| !p.title.is_empty() && !p.tags.is_empty())
        .collect();
    Some(posts)
}

fn write(path: &Path, delimiter: u8, header: Option<&[&str]>, rows: &[Vec<String>]) {
    let mut w = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_path(path)
        .unwrap();
    if let Some(h) = header {
        w.write_record(h).unwrap();
    }
    for r in rows {
        w.write_record(r).unwrap();
    }
    w.flush().unwrap();
}

fn distinct(examples: &[Example]) -> usize {
    examples
        .iter()
        .flat_map(|e| e.tags.iter())
        .collect::<HashSet<_>>()
        .len()
}

fn assert_same(read: &[Example], original: &[Example]) {
    assert_eq!(read.len(), original.len());
    for (r, o) in read.iter().zip(original) {
        assert_eq!(r, o);
    }
}

fn read(path: &Path) -> (Vec<Example>, LoadReport) {
    let (examples, report, _) = dataset::read_path(path, &CsvOptions::default()).unwrap();
    (examples, report)
}

#[test]
fn every_tag_format_reads_so_titles_100_tags() {
    let Some(original) = so_titles() else { return };
    assert_eq!(distinct(&original), 100);
    let dir = tempfile::tempdir().unwrap();
    type Encode = fn(&[String]) -> String;
    let formats: [(&str, TagFormat, Encode); 8] = [
        ("comma", TagFormat::Comma, |t| t.join(",")),
        ("pipe", TagFormat::Pipe, |t| t.join("|")),
        // The 2023+ Stack Exchange dumps: `|a|b|`.
        ("pipe-wrapped", TagFormat::Pipe, |t| {
            format!("|{}|", t.join("|"))
        }),
        ("semicolon", TagFormat::Semicolon, |t| t.join(";")),
        ("space", TagFormat::Space, |t| t.join(" ")),
        ("angle", TagFormat::Angle, |t| format!("<{}>", t.join("><"))),
        ("python-list", TagFormat::List, |t| {
            let items: Vec<String> = t.iter().map(|x| format!("'{x}'")).collect();
            format!("[{}]", items.join(", "))
        }),
        ("json-list", TagFormat::List, |t| {
            serde_json::to_string(t).unwrap()
        }),
    ];
    for (name, format, encode) in formats {
        let path = dir.path().join(format!("{name}.csv"));
        let rows: Vec<Vec<String>> = original
            .iter()
            .map(|e| vec![encode(&e.tags), e.text.clone()])
            .collect();
        write(&path, b',', Some(&["tags", "text"]), &rows);
        let (examples, report) = read(&path);
        assert_same(&examples, &original);
        assert_eq!(distinct(&examples), 100, "{name}");
        let f = report.format.as_ref().unwrap();
        assert_eq!(f.tag_format, Some(format), "{name}");
        assert!(f.tag_format_detected && f.delimiter_detected, "{name}");
        assert!(report.warnings.is_empty(), "{name}: {:?}", report.warnings);
    }
}

/// The issue as users met it: a `|` file read as comma-separated trains on 705 "tags". Forced
/// to comma, the reader still reads it so, but says the tags look mis-split.
#[test]
fn a_mis_split_tag_column_is_warned_about() {
    let Some(original) = so_titles() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pipe.csv");
    let rows: Vec<Vec<String>> = original
        .iter()
        .map(|e| vec![e.tags.join("|"), e.text.clone()])
        .collect();
    write(&path, b',', Some(&["tags", "text"]), &rows);
    let combos: HashSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    let opts = CsvOptions {
        tag_format: TagFormat::Comma,
        ..CsvOptions::default()
    };
    let (examples, report) = dataset::read_csv_path(&path, &opts).unwrap();
    assert_eq!(distinct(&examples), combos.len());
    assert!(combos.len() > 600, "{}", combos.len());
    assert!(!report.format.as_ref().unwrap().tag_format_detected);
    eprintln!("{}\n{:?}", report.format.as_ref().unwrap(), report.warnings);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("mis-split") && w.contains('|')),
        "{:?}",
        report.warnings
    );
    // Python list literals read as comma-separated: brackets and quotes in the tags.
    let path = dir.path().join("list.csv");
    let rows: Vec<Vec<String>> = original
        .iter()
        .map(|e| vec![format!("{:?}", e.tags), e.text.clone()])
        .collect();
    write(&path, b',', Some(&["tags", "text"]), &rows);
    let (_, report) = dataset::read_csv_path(&path, &opts).unwrap();
    assert!(
        report.warnings.iter().any(|w| w.contains("mis-split")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn tab_and_semicolon_delimited_files_are_detected() {
    let Some(original) = so_titles() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (name, delimiter, expected) in [
        ("tsv", b'\t', Delimiter::Tab),
        ("semicolon", b';', Delimiter::Semicolon),
    ] {
        let path = dir.path().join(format!("{name}.csv"));
        // Text first, tags second, as the Coursera files have it.
        let rows: Vec<Vec<String>> = original
            .iter()
            .map(|e| vec![e.text.clone(), e.tags.join(",")])
            .collect();
        write(&path, delimiter, Some(&["text", "tags"]), &rows);
        let (examples, report) = read(&path);
        assert_same(&examples, &original);
        let f = report.format.unwrap();
        assert_eq!((f.delimiter, f.delimiter_detected), (expected, true));
        assert_eq!(f.tag_format, Some(TagFormat::Comma));
        assert_eq!(distinct(&examples), 100);
    }
}

/// The raw file so-titles was made from, as published: tab-separated, `title` then `tags`, tags
/// as Python list literals (`['php', 'sql']`). 30,000 rows, 100 tags.
#[test]
fn the_raw_so_titles_tsv_reads_as_published() {
    let path = data_dir().join("raw/so-titles-100tags/validation.tsv");
    if !path.exists() {
        return eprintln!("skipping: {} is absent", path.display());
    }
    let (examples, report) = read(&path);
    assert_eq!((report.rows_read, report.rows_used), (30_000, 30_000));
    assert_eq!(distinct(&examples), 100);
    assert_eq!(examples[0].tags, ["php", "sql"]);
    assert_eq!(examples[0].text, "Why odbc_exec always fail?");
    let f = report.format.unwrap();
    assert_eq!(f.delimiter, Delimiter::Tab);
    assert_eq!(f.tag_format, Some(TagFormat::List));
    // The same rows as the canonical so-titles train + test files hold.
    let Some(train) = so_titles() else { return };
    let titles: HashSet<(&str, &[String])> = examples
        .iter()
        .map(|e| (e.text.as_str(), e.tags.as_slice()))
        .collect();
    assert!(train
        .iter()
        .all(|e| titles.contains(&(e.text.as_str(), e.tags.as_slice()))));
}

#[test]
fn a_headerless_file_reads_with_columns() {
    let Some(original) = so_titles() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("headerless.tsv");
    let rows: Vec<Vec<String>> = original
        .iter()
        .map(|e| vec!["0".to_owned(), e.text.clone(), e.tags.join("|")])
        .collect();
    write(&path, b'\t', None, &rows);
    for columns in [
        vec!["id", "text", "tags"],
        vec!["_", "text", "tags"],
        vec!["tags=3", "text=2"],
    ] {
        let opts = CsvOptions {
            no_header: true,
            columns: columns.iter().map(|s| s.to_string()).collect(),
            ..CsvOptions::default()
        };
        let (examples, report) = dataset::read_csv_path(&path, &opts).unwrap();
        assert_same(&examples, &original);
        let f = report.format.unwrap();
        assert!(!f.header);
        assert_eq!(f.tag_format, Some(TagFormat::Pipe), "{columns:?}");
    }
    // Without `columns` a headerless file is `tags,text`.
    let path = dir.path().join("plain.csv");
    let rows: Vec<Vec<String>> = original
        .iter()
        .map(|e| vec![e.tags.join(","), e.text.clone()])
        .collect();
    write(&path, b',', None, &rows);
    let opts = CsvOptions {
        no_header: true,
        ..CsvOptions::default()
    };
    let (examples, report) = dataset::read_csv_path(&path, &opts).unwrap();
    assert_same(&examples, &original);
    assert_eq!(report.rows_read as usize, original.len());
    // Names need a header.
    let opts = CsvOptions {
        no_header: true,
        columns: vec!["tags=Tags".into(), "text=1".into()],
        ..CsvOptions::default()
    };
    let err = dataset::read_csv_path(&path, &opts).unwrap_err();
    assert!(err.to_string().contains("columns"), "{err}");
}

/// Kaggle's StackSample: `Questions.csv` (Id, OwnerUserId, CreationDate, ClosedDate, Score,
/// Title, Body with HTML) and `Tags.csv` (Id, Tag: one row per tag), joined on Id; the
/// published files are ISO-8859-1, so a Latin-1 byte reads as its character.
#[test]
fn a_stacksample_folder_joins_questions_and_tags() {
    let Some(posts) = so_nlp_posts() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut questions = csv::Writer::from_path(dir.path().join("Questions.csv")).unwrap();
    questions
        .write_record([
            "Id",
            "OwnerUserId",
            "CreationDate",
            "ClosedDate",
            "Score",
            "Title",
            "Body",
        ])
        .unwrap();
    let mut tags = csv::Writer::from_path(dir.path().join("Tags.csv")).unwrap();
    tags.write_record(["Id", "Tag"]).unwrap();
    for (i, p) in posts.iter().enumerate() {
        let mut title = p.title.clone().into_bytes();
        if i == 0 {
            title.extend(b" caf\xe9");
        }
        let body = format!("<p>{}</p>", p.body);
        questions
            .write_record([
                p.id.as_bytes(),
                b"NA",
                b"2015-02-08T21:04:04Z",
                b"NA",
                b"3",
                &title,
                body.as_bytes(),
            ])
            .unwrap();
        for t in &p.tags {
            tags.write_record([p.id.as_str(), t]).unwrap();
        }
    }
    // A question without tags is skipped, not joined with another's.
    questions
        .write_record([
            "1",
            "NA",
            "2015-01-01T00:00:00Z",
            "NA",
            "0",
            "untagged",
            "<p>x</p>",
        ])
        .unwrap();
    questions.flush().unwrap();
    tags.flush().unwrap();
    drop((questions, tags));
    let opts = CsvOptions {
        max_bad_fraction: 0.5,
        ..CsvOptions::default()
    };
    for path in [dir.path().to_path_buf(), dir.path().join("Questions.csv")] {
        let (examples, report, sha) = dataset::read_path(&path, &opts).unwrap();
        assert_eq!(examples.len(), posts.len());
        assert_eq!(report.count(dataset::SkipReason::NoTags), 1);
        for (e, p) in examples.iter().zip(&posts) {
            assert_eq!(e.tags, p.tags);
        }
        assert!(examples[0]
            .text
            .ends_with(&format!("café <p>{}</p>", posts[0].body)));
        assert_eq!(
            examples[1].text,
            format!("{} <p>{}</p>", posts[1].title, posts[1].body)
        );
        assert_eq!(report.format.unwrap().layout, Layout::StackSample);
        assert_eq!(sha.len(), 64);
    }
}

/// An export of `bigquery-public-data.stackoverflow.posts_questions`: its columns in its
/// order, HTML bodies, `|`-separated tags.
#[test]
fn a_bigquery_posts_questions_export_reads_directly() {
    let Some(posts) = so_nlp_posts() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bq-results-20240101.csv");
    let header = [
        "id",
        "title",
        "body",
        "accepted_answer_id",
        "answer_count",
        "comment_count",
        "community_owned_date",
        "creation_date",
        "favorite_count",
        "last_activity_date",
        "last_edit_date",
        "last_editor_display_name",
        "last_editor_user_id",
        "owner_display_name",
        "owner_user_id",
        "parent_id",
        "post_type_id",
        "score",
        "tags",
        "view_count",
    ];
    let rows: Vec<Vec<String>> = posts
        .iter()
        .map(|p| {
            let mut r = vec![String::new(); header.len()];
            r[0] = p.id.clone();
            r[1] = p.title.clone();
            r[2] = format!("<p>{}</p>\n<pre><code>x = 1\n</code></pre>", p.body);
            r[7] = "2015-02-08 21:04:04.123 UTC".into();
            r[16] = "1".into();
            r[18] = p.tags.join("|");
            r
        })
        .collect();
    write(&path, b',', Some(&header), &rows);
    let (examples, report) = read(&path);
    assert_eq!(examples.len(), posts.len());
    for (e, p) in examples.iter().zip(&posts) {
        assert_eq!(e.tags, p.tags);
        assert!(e.text.starts_with(&format!("{} <p>", p.title)));
    }
    let f = report.format.unwrap();
    assert_eq!(f.layout, Layout::BigQuery);
    assert_eq!(f.tag_format, Some(TagFormat::Pipe));
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

/// The raw so-nlp export as published: an unnamed index column, `Title` and `Body` apart,
/// space-separated `Tags`.
#[test]
fn the_raw_so_nlp_export_reads_as_published() {
    let Some(posts) = so_nlp_posts() else { return };
    let path = data_dir().join("raw/so-nlp-libs/spacy.csv");
    let opts = CsvOptions {
        max_bad_fraction: 1.0,
        ..CsvOptions::default()
    };
    let (examples, report, _) = dataset::read_path(&path, &opts).unwrap();
    assert_eq!(examples.len(), posts.len());
    for (e, p) in examples.iter().zip(&posts) {
        assert_eq!(e.tags, p.tags);
    }
    assert_eq!(report.format.unwrap().tag_format, Some(TagFormat::Space));
}
