//! Question text before tokenisation: HTML to plain text, and masking of giveaway words.
//!
//! Stack Overflow bodies (and drafts from a rich editor) arrive as HTML. [`normalise`] turns them
//! into the words a reader sees — code included, since code carries much of the signal — and
//! leaves plain text untouched. [`Masker`] replaces words that name the answer (a tag such as
//! `tensorflow`, or an alias such as `tf`) so a model trained with masking learns from the rest
//! of the question, as the origin did with its `avocado` replacement.
//!
//! Lowercasing is the tokenizer's job; nothing here changes case except the masker's matching.

use std::borrow::Cow;

mod masker;
pub use masker::Masker;

/// Tags whose presence marks a text as HTML. Only well-known names count, so a question about
/// `List<String>` or `a < b` is not mistaken for markup.
const KNOWN_TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "body",
    "br",
    "code",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "hr",
    "html",
    "i",
    "img",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "script",
    "span",
    "strike",
    "strong",
    "style",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "u",
    "ul",
];

/// Elements that start a new block: their text must not run into the neighbours' text
/// (`<p>one</p><p>two</p>` is "one two", not "onetwo").
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "html",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// Elements whose content is not text a reader sees.
const DROPPED_TAGS: &[&str] = &["script", "style", "template", "noscript", "head", "svg"];

/// Whether `s` looks like HTML: it holds a comment or a doctype, or a complete opening or
/// closing tag of a well-known element: its name followed by `>`, `/` or whitespace, and a `>`
/// closing the tag before the next `<`. A title that merely mentions a tag
/// (`<script type="x-text/handlebars" always becomes a div`) has no closing `>` and stays text.
///
/// One pass over the bytes, no allocation: it is called on every question.
pub fn looks_like_html(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|&b| b == b'<') {
        let at = from + offset + 1;
        let rest = &bytes[at..];
        if rest.starts_with(b"!--") || starts_with_ignore_case(rest, b"!doctype") {
            return true;
        }
        let name_part = rest.strip_prefix(b"/").unwrap_or(rest);
        let name_len = name_part
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len > 0 {
            let name = &name_part[..name_len];
            let after = name_part.get(name_len).copied();
            let ends_tag = matches!(after, Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r'));
            let closed = || {
                name_part[name_len..]
                    .iter()
                    .find(|&&b| b == b'>' || b == b'<')
                    == Some(&b'>')
            };
            if ends_tag
                && KNOWN_TAGS
                    .iter()
                    .any(|t| t.as_bytes().eq_ignore_ascii_case(name))
                && closed()
            {
                return true;
            }
        }
        from = at;
    }
    false
}

fn starts_with_ignore_case(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Plain text of an HTML fragment or document: tags dropped, entities decoded, the contents of
/// `<code>`/`<pre>` kept, block elements separated by a space, `<script>`/`<style>` contents
/// dropped, runs of whitespace collapsed to one space.
///
/// Parsing uses `tl`; `tl` does not know that script and style contents are raw text (where a
/// `<` starts no tag), so those elements are cut out before parsing, as the HTML tokenizer's
/// raw-text rule would.
pub fn html_to_text(s: &str) -> String {
    let without_raw = drop_raw_text_elements(s);
    let Ok(dom) = tl::parse(&without_raw, tl::ParserOptions::default()) else {
        // tl only refuses inputs over 4 GiB; return the text rather than nothing.
        return collapse_whitespace(&html_escape::decode_html_entities(s));
    };
    let parser = dom.parser();
    let mut out = String::with_capacity(s.len());

    enum Step {
        Visit(tl::NodeHandle),
        Space,
    }
    // An explicit stack: deeply nested input must not overflow the call stack.
    let mut stack: Vec<Step> = dom
        .children()
        .iter()
        .rev()
        .map(|&h| Step::Visit(h))
        .collect();
    while let Some(step) = stack.pop() {
        let handle = match step {
            Step::Space => {
                out.push(' ');
                continue;
            }
            Step::Visit(handle) => handle,
        };
        match handle.get(parser) {
            Some(tl::Node::Raw(bytes)) => {
                html_escape::decode_html_entities_to_string(bytes.as_utf8_str(), &mut out);
            }
            Some(tl::Node::Tag(tag)) => {
                let name = tag.name().as_utf8_str();
                let is = |list: &[&str]| list.iter().any(|t| t.eq_ignore_ascii_case(&name));
                if is(DROPPED_TAGS) {
                    continue;
                }
                let block = is(BLOCK_TAGS);
                if block {
                    out.push(' ');
                    stack.push(Step::Space);
                }
                let children = tag.children();
                stack.extend(
                    children
                        .top()
                        .as_slice()
                        .iter()
                        .rev()
                        .map(|&h| Step::Visit(h)),
                );
            }
            Some(tl::Node::Comment(_)) | None => {}
        }
    }
    collapse_whitespace(&out)
}

/// `s` with every `<script>…</script>` and `<style>…</style>` element removed (an unclosed one
/// runs to the end, as in a browser).
fn drop_raw_text_elements(s: &str) -> Cow<'_, str> {
    let bytes = s.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(offset) = bytes[from..].iter().position(|&b| b == b'<') {
        let at = from + offset;
        from = at + 1;
        let rest = &bytes[at + 1..];
        let Some(name) = [&b"script"[..], b"style"].into_iter().find(|n| {
            starts_with_ignore_case(rest, n)
                && matches!(
                    rest.get(n.len()),
                    Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r')
                )
        }) else {
            continue;
        };
        out.push_str(&s[copied..at]);
        out.push(' ');
        // Find `</name` then the `>` after it.
        let mut end = bytes.len();
        let mut search = at + 1 + name.len();
        while let Some(o) = bytes[search..].iter().position(|&b| b == b'<') {
            let lt = search + o;
            let r = &bytes[lt + 1..];
            if r.first() == Some(&b'/') && starts_with_ignore_case(&r[1..], name) {
                end = bytes[lt..]
                    .iter()
                    .position(|&b| b == b'>')
                    .map_or(bytes.len(), |p| lt + p + 1);
                break;
            }
            search = lt + 1;
        }
        copied = end;
        from = end;
    }
    if copied == 0 && out.is_empty() {
        return Cow::Borrowed(s);
    }
    out.push_str(&s[copied..]);
    Cow::Owned(out)
}

fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// [`html_to_text`] when `s` [looks like HTML](looks_like_html), else `s` unchanged. A question
/// with words never comes out empty: when the markup shows no text but words stand outside its
/// tags (a lone `<script>` element, a misread tag), the raw text is kept, since those words are
/// all the model has. Markup alone (`<p></p>`) stays empty.
pub fn normalise(s: &str) -> Cow<'_, str> {
    if looks_like_html(s) {
        let plain = html_to_text(s);
        if plain.is_empty() && has_words_outside_tags(s) {
            Cow::Borrowed(s)
        } else {
            Cow::Owned(plain)
        }
    } else {
        Cow::Borrowed(s)
    }
}

/// Whether a letter or digit stands outside every `<...>` of `s`.
fn has_words_outside_tags(s: &str) -> bool {
    let mut in_tag = false;
    s.chars().any(|c| {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag && c.is_alphanumeric() => return true,
            _ => {}
        }
        false
    })
}

/// A question or training text as the tokenizer sees it: [`normalise`]d (HTML to text), then
/// masked. Training and serving both call this, so they cannot drift apart; it borrows the input
/// when nothing changes (no allocation on the hot path).
pub fn prepare<'a>(masker: &Masker, raw: &'a str) -> Cow<'a, str> {
    match normalise(raw) {
        Cow::Borrowed(plain) => masker.mask(plain),
        Cow::Owned(plain) => match masker.mask(&plain) {
            Cow::Owned(masked) => Cow::Owned(masked),
            Cow::Borrowed(_) => Cow::Owned(plain),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_with_comparisons_is_not_html() {
        assert!(!looks_like_html("if a < b and c > d, why does it fail?"));
        assert!(!looks_like_html(
            "List<String> vs ArrayList<String> in Java"
        ));
        assert!(!looks_like_html("x<y"));
        assert!(!looks_like_html(""));
    }

    #[test]
    fn markup_is_html() {
        assert!(looks_like_html("<p>How do I train?</p>"));
        assert!(looks_like_html("text<br>more"));
        assert!(looks_like_html("text<BR/>more"));
        assert!(looks_like_html("see <a href=\"x\">this</a>"));
        assert!(looks_like_html("<!-- c -->"));
        assert!(looks_like_html("<!DOCTYPE html><html></html>"));
    }

    #[test]
    fn html_to_text_drops_tags_and_decodes_entities() {
        let t =
            html_to_text("<p>Fish &amp; chips &lt;3 &quot;ok&quot; &#39;x&#39; caf&eacute;</p>");
        assert_eq!(t, "Fish & chips <3 \"ok\" 'x' café");
    }

    #[test]
    fn html_to_text_keeps_code_and_pre_contents() {
        let t = html_to_text(
            "<p>I run <code>model.fit(x)</code>:</p><pre><code>import keras\nif a &lt; b: pass</code></pre>",
        );
        assert_eq!(t, "I run model.fit(x): import keras if a < b: pass");
    }

    #[test]
    fn html_to_text_separates_block_elements_but_not_inline_ones() {
        assert_eq!(
            html_to_text("<p>one</p><p>two</p><ul><li>a</li><li>b</li></ul>"),
            "one two a b"
        );
        assert_eq!(html_to_text("line<br>break"), "line break");
        assert_eq!(html_to_text("<b>bo</b><i>ld</i>"), "bold");
    }

    #[test]
    fn html_to_text_drops_script_and_style_contents() {
        let t = html_to_text(
            "<p>before</p><script>if (a<b) { x = '</p>'; }</script><style>p { color: red }</style><p>after</p>",
        );
        assert_eq!(t, "before after");
        assert_eq!(
            html_to_text("<p>kept</p><SCRIPT type=x>never closed"),
            "kept"
        );
    }

    #[test]
    fn html_to_text_survives_broken_and_deep_markup() {
        assert_eq!(html_to_text("<p>unclosed <b>bold"), "unclosed bold");
        let deep = "<div>".repeat(100_000) + "deep";
        assert_eq!(html_to_text(&deep), "deep");
    }

    #[test]
    fn normalise_leaves_plain_text_borrowed() {
        assert!(matches!(normalise("a < b"), Cow::Borrowed("a < b")));
        assert_eq!(normalise("<p>a</p>"), "a");
    }

    /// A so-titles test title (`../shared/data/so-titles/test.csv`) that starts like a script
    /// element but is a plain question.
    const HANDLEBARS_TITLE: &str = "<script type=\"x-text/handlebars\" always becomes an 'ember-view' as a div - how to make it a span?";

    #[test]
    fn a_tag_mentioned_in_plain_text_is_not_html() {
        assert!(!looks_like_html(HANDLEBARS_TITLE));
        assert!(matches!(normalise(HANDLEBARS_TITLE), Cow::Borrowed(_)));
        assert!(!looks_like_html("why does <div never close"));
        assert!(looks_like_html("a <div class=\"x\">b</div>"));
    }

    #[test]
    fn a_non_empty_question_never_normalises_to_empty_text() {
        for q in [
            HANDLEBARS_TITLE,
            "<script>alert(1)</script>",
            "<style>p { color: red }</style>",
        ] {
            let n = normalise(q);
            assert!(!n.trim().is_empty(), "{q:?} -> {n:?}");
        }
        // Markup without a word is an empty question.
        assert_eq!(normalise("<p>  </p> <br>"), "");
        assert_eq!(normalise(""), "");
    }

    fn origin_masker() -> Masker {
        Masker::new(
            [
                "keras",
                "tensorflow",
                "scikit-learn",
                "tf",
                "sklearn",
                "scikit",
                "up",
            ],
            "avocado",
        )
    }

    #[test]
    fn masks_whole_words_case_insensitively() {
        let m = origin_masker();
        assert_eq!(
            m.mask("Keras and TensorFlow: tf.nn vs TF2"),
            "avocado and avocado: avocado.nn vs TF2"
        );
    }

    #[test]
    fn mask_never_replaces_inside_a_word() {
        let m = origin_masker();
        assert_eq!(m.mask("update setup upstream"), "update setup upstream");
        assert_eq!(m.mask("kerasify tfidf my_tf"), "kerasify tfidf my_tf");
        assert_eq!(m.mask("speed up!"), "speed avocado!");
    }

    #[test]
    fn masks_multi_token_words_longest_first() {
        let m = origin_masker();
        assert_eq!(
            m.mask("Scikit-Learn or scikit or sklearn"),
            "avocado or avocado or avocado"
        );
        assert_eq!(m.mask("scikit-image"), "avocado-image");
        let net = Masker::new([".net", "asp.net"], "X");
        assert_eq!(
            net.mask("ASP.NET on .NET, not dotnet"),
            "X on X, not dotnet"
        );
    }

    #[test]
    fn mask_borrows_when_nothing_matches_and_handles_unicode() {
        let m = origin_masker();
        assert!(matches!(m.mask("nothing here"), Cow::Borrowed(_)));
        assert!(matches!(
            Masker::none().mask("keras"),
            Cow::Borrowed("keras")
        ));
        assert_eq!(m.mask("Ünïcode keras ✓"), "Ünïcode avocado ✓");
        assert_eq!(m.mask("éKeras"), "éKeras");
    }

    #[test]
    fn masker_round_trips_through_serde() {
        let m = origin_masker();
        let json = serde_json::to_string(&m).unwrap();
        let back: Masker = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.mask("Keras"), "avocado");
    }
}
