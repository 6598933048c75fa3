//! Reading from paths: a CSV file, or a StackSample folder, hashed as it is read.

use super::*;

/// The file at `path` read with `opts`, and the SHA-256 of the bytes read. `path` may be a
/// Kaggle StackSample folder (holding `Questions.csv` and `Tags.csv`) or its `Questions.csv`
/// with `Tags.csv` beside it: the two are joined ([`read_stacksample`]) and the digest covers
/// both.
pub fn read_path(path: &Path, opts: &CsvOptions) -> Result<(Vec<Example>, LoadReport, String)> {
    let open = |p: &Path| std::fs::File::open(p).map_err(|e| Error::io(p, e));
    let mut hasher = Sha256::new();
    let out = match stacksample_files(path) {
        Some((questions, tags)) => {
            let table = TagTable::read(Hashing {
                inner: open(&tags)?,
                hasher: &mut hasher,
            })?;
            let mut reader = Hashing {
                inner: open(&questions)?,
                hasher: &mut hasher,
            };
            let out = read_stacksample(&mut reader, &table, opts)?;
            std::io::copy(&mut reader, &mut std::io::sink())
                .map_err(|e| Error::io(&questions, e))?;
            out
        }
        None => {
            let mut reader = Hashing {
                inner: open(path)?,
                hasher: &mut hasher,
            };
            let out = read_csv(&mut reader, opts)?;
            // Hash any rest, so the digest always covers the whole input.
            std::io::copy(&mut reader, &mut std::io::sink()).map_err(|e| Error::io(path, e))?;
            out
        }
    };
    Ok((out.0, out.1, hex::encode(hasher.finalize())))
}

/// `Questions.csv` and `Tags.csv` for a StackSample folder or its `Questions.csv`.
pub fn stacksample_files(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let find = |dir: &Path, name: &str| -> Option<PathBuf> {
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.eq_ignore_ascii_case(name))
            })
    };
    if path.is_dir() {
        return Some((find(path, "Questions.csv")?, find(path, "Tags.csv")?));
    }
    let is_questions = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.eq_ignore_ascii_case("Questions.csv"));
    if !is_questions {
        return None;
    }
    let tags = find(
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
        "Tags.csv",
    )?;
    Some((path.to_path_buf(), tags))
}

pub(super) struct Hashing<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// [`read_csv`] on a file.
pub fn read_csv_path(path: &Path, opts: &CsvOptions) -> Result<(Vec<Example>, LoadReport)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    read_csv(file, opts)
}
