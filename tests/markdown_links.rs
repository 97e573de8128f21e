//! Every relative link in every Markdown file of the repository leads somewhere: to a file
//! or directory inside the repository and, with a `#fragment`, to a heading of the Markdown
//! file it names (GitHub's anchor rules) or an `id`/`name` anchor in it. Links with a
//! scheme (`https:`, `mailto:`, ...) are not followed; links in code blocks and code spans
//! are not links. A dead link fails the test with its file, line and destination.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// A link found in a Markdown file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    /// 1-based line of the destination.
    line: usize,
    /// The destination as written.
    dest: String,
}

/// Directories never searched for Markdown files.
const SKIPPED_DIRS: &[&str] = &["target", ".git"];

/// The Markdown files under `root`, sorted, skipping build output and VCS data.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("directory entry");
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                if !SKIPPED_DIRS.contains(&name.as_str()) {
                    dirs.push(path);
                }
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A fenced code block's opening fence (` ``` ` or `~~~`, at most three spaces in), as the
/// fence character and length.
fn fence(line: &str) -> Option<(char, usize)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let c = rest.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = rest.chars().take_while(|&x| x == c).count();
    (n >= 3).then_some((c, n))
}

/// The lines of a Markdown text outside fenced code blocks, with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut open: Option<(char, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        match (open, fence(line)) {
            (None, Some(f)) => open = Some(f),
            (Some((c, n)), Some((c2, n2))) if c == c2 && n2 >= n && line.trim().chars().all(|x| x == c) => open = None,
            (None, None) => out.push((i + 1, line)),
            _ => {}
        }
    }
    out
}

/// A line with its code spans (`` `...` ``, any number of backticks) blanked out.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        // Find the closing run of the same length.
        let mut j = i + run;
        let mut closed = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let r = chars[j..].iter().take_while(|&&c| c == '`').count();
                if r == run {
                    closed = Some(j + r);
                    break;
                }
                j += r;
            } else {
                j += 1;
            }
        }
        match closed {
            Some(end) => {
                out.extend(std::iter::repeat_n(' ', end - i));
                i = end;
            }
            None => {
                out.extend(&chars[i..i + run]);
                i += run;
            }
        }
    }
    out
}

/// The destination of an inline link starting right after `](`: up to the matching `)`,
/// without a title, `<...>` unwrapped.
fn inline_dest(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    if let Some(angle) = rest.strip_prefix('<') {
        return angle.find('>').map(|end| angle[..end].to_owned());
    }
    let mut depth = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(rest[..i].split_whitespace().next().unwrap_or("").to_owned()),
            ')' => depth -= 1,
            c if c.is_whitespace() && depth == 0 => return Some(rest[..i].to_owned()),
            _ => {}
        }
    }
    None
}

/// The value of every `attr="..."` (or `'...'`) HTML attribute in a line.
fn html_attrs(line: &str, attr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = line.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&format!("{attr}=")) {
        let start = from + pos;
        let before_ok = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric();
        let value_start = start + attr.len() + 1;
        from = value_start;
        let Some(quote) = line[value_start..].chars().next().filter(|q| *q == '"' || *q == '\'') else {
            continue;
        };
        let body = &line[value_start + 1..];
        if let (true, Some(end)) = (before_ok, body.find(quote)) {
            out.push(body[..end].to_owned());
        }
    }
    out
}

/// Every link of a Markdown text: inline links and images, reference definitions, HTML
/// `href`/`src` attributes; not those in code.
fn links(text: &str) -> Vec<Link> {
    let mut out = Vec::new();
    for (line, raw) in prose_lines(text) {
        let prose = without_code_spans(raw);
        let mut from = 0;
        while let Some(pos) = prose[from..].find("](") {
            let start = from + pos + 2;
            if let Some(dest) = inline_dest(&prose[start..]) {
                out.push(Link { line, dest });
            }
            from = start;
        }
        // Reference definitions: `[label]: dest`.
        let trimmed = prose.trim_start();
        if prose.len() - trimmed.len() <= 3 && trimmed.starts_with('[') {
            let definition = trimmed.find(']').and_then(|end| trimmed[end + 1..].strip_prefix(':'));
            if let Some(dest) = definition.and_then(|rest| rest.split_whitespace().next()) {
                out.push(Link {
                    line,
                    dest: dest.trim_start_matches('<').trim_end_matches('>').to_owned(),
                });
            }
        }
        for attr in ["href", "src"] {
            for dest in html_attrs(&prose, attr) {
                out.push(Link { line, dest });
            }
        }
    }
    out
}

/// Whether a destination has a scheme (`https:`, `mailto:`) or is protocol-relative: not
/// a file of this repository.
fn is_external(dest: &str) -> bool {
    if dest.starts_with("//") {
        return true;
    }
    let end = dest.find(['/', '#', '?']).unwrap_or(dest.len());
    dest[..end].contains(':')
}

/// `%XX` escapes decoded (a link to `my%20file.md` names `my file.md`).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = s.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The rendered text of a heading: links become their text, code spans and emphasis marks
/// and HTML tags go.
fn heading_text(raw: &str) -> String {
    let mut text = String::new();
    let chars: Vec<char> = raw.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            // `[text](dest)` -> text
            ']' if chars.get(i + 1) == Some(&'(') => {
                let mut depth = 0;
                i += 2;
                while i < chars.len() {
                    match chars[i] {
                        '(' => depth += 1,
                        ')' if depth == 0 => break,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
            }
            '[' | '`' | '*' => {}
            '<' => {
                while i < chars.len() && chars[i] != '>' {
                    i += 1;
                }
            }
            c => text.push(c),
        }
        i += 1;
    }
    text
}

/// GitHub's anchor of a heading's text: lower case, every character but letters, digits,
/// `_`, `-` and spaces dropped, spaces made `-`.
fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '_' || c == '-' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown text: one per heading (ATX `# ...` and setext underlined),
/// numbered `-1`, `-2`, ... when repeated, as GitHub does; plus HTML `id`/`name` attributes.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let add = |base: String, seen: &mut HashSet<String>| {
        let mut candidate = base.clone();
        let mut n = 0;
        while seen.contains(&candidate) {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        seen.insert(candidate);
    };
    let lines = prose_lines(text);
    for (k, &(number, line)) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        if indent <= 3 && (1..=6).contains(&hashes) {
            let rest = &trimmed[hashes..];
            if rest.is_empty() || rest.starts_with([' ', '\t']) {
                let body = rest.trim().trim_end_matches('#').trim_end();
                add(slug(&heading_text(body)), &mut seen);
                continue;
            }
        }
        // Setext: a paragraph line directly followed by `===` or `---`.
        if let Some(&(next_number, next)) = lines.get(k + 1) {
            let under = next.trim();
            let is_underline =
                !under.is_empty() && (under.chars().all(|c| c == '=') || under.chars().all(|c| c == '-'));
            let previous_blank = k == 0 || lines[k - 1].1.trim().is_empty() || lines[k - 1].0 + 1 != number;
            if next_number == number + 1
                && is_underline
                && !trimmed.is_empty()
                && previous_blank
                && !trimmed.starts_with(['|', '-', '*', '>'])
            {
                add(slug(&heading_text(trimmed)), &mut seen);
            }
        }
        for attr in ["id", "name"] {
            for value in html_attrs(line, attr) {
                seen.insert(value);
            }
        }
    }
    seen
}

/// `path` with `.` and `..` resolved lexically; `None` when `..` climbs above the start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

/// Why a link of `file` (a path relative to `root`) is dead, or `None` when it leads
/// somewhere.
fn dead_because(root: &Path, file: &Path, dest: &str) -> Option<String> {
    if dest.is_empty() {
        return Some("empty destination".into());
    }
    if is_external(dest) {
        return None;
    }
    let (path_part, fragment) = match dest.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (dest, None),
    };
    let path_part = path_part.split('?').next().unwrap_or("");
    let target = if path_part.is_empty() {
        file.to_path_buf()
    } else {
        let decoded = percent_decode(path_part);
        let joined = match decoded.strip_prefix('/') {
            Some(from_root) => PathBuf::from(from_root),
            None => file.parent().unwrap_or(Path::new("")).join(decoded),
        };
        match normalize(&joined) {
            Some(p) => p,
            None => return Some("points outside the repository".into()),
        }
    };
    let on_disk = root.join(&target);
    if !on_disk.exists() {
        return Some(format!("{} does not exist", target.display()));
    }
    let fragment = fragment.filter(|f| !f.is_empty())?;
    if target.extension().is_some_and(|e| e == "md") {
        let text = std::fs::read_to_string(&on_disk).unwrap_or_default();
        let fragment = percent_decode(fragment);
        if anchors(&text).contains(&fragment) {
            None
        } else {
            Some(format!("{} has no heading with anchor #{fragment}", target.display()))
        }
    } else if fragment.starts_with('L') && fragment[1..].split("-L").all(|n| n.parse::<u32>().is_ok()) {
        None // GitHub's line anchors (`#L10`, `#L10-L20`).
    } else {
        Some(format!("#{fragment} cannot be checked in {}", target.display()))
    }
}

/// Every dead link of every Markdown file under `root`, as `file:line: link: why`.
fn dead_links(root: &Path) -> Vec<String> {
    let mut dead = Vec::new();
    for path in markdown_files(root) {
        let rel = path.strip_prefix(root).expect("under root").to_path_buf();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        for link in links(&text) {
            if let Some(why) = dead_because(root, &rel, &link.dest) {
                dead.push(format!("{}:{}: ({}): {why}", rel.display(), link.line, link.dest));
            }
        }
    }
    dead
}

#[test]
fn every_relative_link_in_the_repository_leads_somewhere() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = markdown_files(root);
    assert!(
        files.iter().any(|f| f.ends_with("README.md")) && files.iter().any(|f| f.ends_with("docs/architecture.md")),
        "the walk finds the repository's Markdown files: {files:?}"
    );
    let dead = dead_links(root);
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn slugs_follow_githubs_rules() {
    assert_eq!(
        slug(&heading_text("Step 2: add schema_version")),
        "step-2-add-schema_version"
    );
    assert_eq!(slug(&heading_text("Change a state's shape")), "change-a-states-shape");
    assert_eq!(
        slug(&heading_text("The `tokio` feature (async)")),
        "the-tokio-feature-async"
    );
    assert_eq!(slug(&heading_text("[Links](x.md) and **bold**")), "links-and-bold");
    assert_eq!(slug(&heading_text("Ünïcode – dash")), "ünïcode--dash");
    let text =
        "# Title\n\n## Usage\n\n```sh\n# not a heading\n```\n\n## Usage\n\nSetext\n------\n\n<a id=\"custom\"></a>\n";
    let found = anchors(text);
    for want in ["title", "usage", "usage-1", "setext", "custom"] {
        assert!(found.contains(want), "{want} in {found:?}");
    }
    assert!(!found.contains("not-a-heading"), "{found:?}");
}

#[test]
fn dead_links_are_reported_with_file_line_and_destination() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("docs")).expect("docs");
    std::fs::create_dir_all(root.join("target")).expect("target");
    std::fs::write(root.join("target/ignored.md"), "[gone](nowhere.md)\n").expect("write");
    std::fs::write(
        root.join("docs/guide.md"),
        "# Guide\n\n## A section\n\nBack to the [readme](../README.md#top).\n",
    )
    .expect("write");
    std::fs::write(
        root.join("README.md"),
        [
            "# Top",
            "",
            "[guide](docs/guide.md), [section](docs/guide.md#a-section), [here](#top), [dir](docs/)",
            "[web](https://example.com/x.md) and `[code](missing.md)`",
            "",
            "```md",
            "[in a fence](missing.md)",
            "```",
            "",
            "[dead file](docs/missing.md)",
            "[dead anchor](docs/guide.md#no-such-section), [outside](../elsewhere.md)",
            "",
            "[ref]: docs/also-missing.md",
        ]
        .join("\n"),
    )
    .expect("write");
    let dead = dead_links(root);
    assert_eq!(
        dead,
        vec![
            "README.md:10: (docs/missing.md): docs/missing.md does not exist".to_owned(),
            "README.md:11: (docs/guide.md#no-such-section): docs/guide.md has no heading with anchor #no-such-section"
                .to_owned(),
            "README.md:11: (../elsewhere.md): points outside the repository".to_owned(),
            "README.md:13: (docs/also-missing.md): docs/also-missing.md does not exist".to_owned(),
        ]
    );
}
