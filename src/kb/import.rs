//! Import files: JSON lines, CSV (a header row; `tags` and `steps` split on `|`) and Markdown
//! (one article per file: an optional `key: value` front matter between `---` lines, a `# title`,
//! the body, and an optional `## Steps` list). Every error names the line it is on; a file
//! with any error imports nothing.

use super::{Article, KbConfig};
use crate::error::{AppError, AppResult};
use std::path::Path;

/// The format of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    Markdown,
}

impl Format {
    /// The format of a file, by its extension.
    pub fn of_path(p: &Path) -> Option<Format> {
        match p.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "csv" => Some(Format::Csv),
            "md" | "markdown" => Some(Format::Markdown),
            _ => None,
        }
    }
}

/// The articles of one import document (`name` is the Markdown article's default id), checked.
pub fn parse(text: &str, format: Format, name: &str, cfg: &KbConfig) -> AppResult<Vec<Article>> {
    let out = match format {
        Format::Jsonl => jsonl(text, cfg)?,
        Format::Csv => csv_rows(text, cfg)?,
        Format::Markdown => vec![markdown(text, name, cfg)?],
    };
    if out.is_empty() {
        return Err(AppError::invalid("body", "the import has no articles"));
    }
    Ok(out)
}

fn jsonl(text: &str, cfg: &KbConfig) -> AppResult<Vec<Article>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("line {}", i + 1);
        let a: Article = serde_json::from_str(line)
            .map_err(|e| AppError::invalid(&at, format!("not an article: {e}")))?;
        out.push(a.checked(&format!("{at}."), cfg)?);
    }
    Ok(out)
}

fn csv_rows(text: &str, cfg: &KbConfig) -> AppResult<Vec<Article>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = r
        .headers()
        .map_err(|e| AppError::invalid("line 1", format!("unreadable CSV header: {e}")))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    for h in headers.iter() {
        if !matches!(
            h.trim(),
            "id" | "title" | "body" | "answer" | "language" | "tags" | "steps"
        ) {
            return Err(AppError::invalid(
                "line 1",
                format!("unknown CSV column `{h}`; known: id, title, body, answer, language, tags, steps"),
            ));
        }
    }
    let (Some(id), Some(title), Some(body)) = (col("id"), col("title"), col("body")) else {
        return Err(AppError::invalid(
            "line 1",
            "the CSV header needs the columns id, title and body",
        ));
    };
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            AppError::invalid(format!("line {line}"), format!("invalid CSV: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").trim().to_string();
        let opt = |c: Option<usize>| Some(get(c)).filter(|s| !s.is_empty());
        let list = |c: Option<usize>| {
            get(c)
                .split('|')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let a = Article {
            id: get(Some(id)),
            title: get(Some(title)),
            body: get(Some(body)),
            answer: opt(col("answer")),
            language: opt(col("language")),
            tags: list(col("tags")),
            steps: list(col("steps")),
        };
        out.push(a.checked(&format!("line {line}."), cfg)?);
    }
    Ok(out)
}

fn markdown(text: &str, name: &str, cfg: &KbConfig) -> AppResult<Article> {
    let lines: Vec<&str> = text.lines().collect();
    let mut a = Article {
        id: name.to_string(),
        title: String::new(),
        body: String::new(),
        answer: None,
        language: None,
        tags: Vec::new(),
        steps: Vec::new(),
    };
    let mut at = 0;
    if lines.first().map(|l| l.trim()) == Some("---") {
        at = 1;
        loop {
            let Some(l) = lines.get(at) else {
                return Err(AppError::invalid(
                    "line 1",
                    "front matter opened with `---` is never closed",
                ));
            };
            at += 1;
            if l.trim() == "---" {
                break;
            }
            if l.trim().is_empty() {
                continue;
            }
            let field = format!("line {at}");
            let (k, v) = l
                .split_once(':')
                .ok_or_else(|| AppError::invalid(&field, "front matter lines are `key: value`"))?;
            let v = v.trim().to_string();
            match k.trim() {
                "id" => a.id = v,
                "answer" => a.answer = Some(v),
                "language" => a.language = Some(v),
                "tags" => {
                    a.tags = v
                        .trim_matches(['[', ']'])
                        .split(',')
                        .map(|t| t.trim().trim_matches(['"', '\'']).to_string())
                        .filter(|t| !t.is_empty())
                        .collect()
                }
                other => {
                    return Err(AppError::invalid(
                        &field,
                        format!(
                            "unknown front matter key `{other}`; known: id, answer, language, tags"
                        ),
                    ))
                }
            }
        }
    }
    let mut body = Vec::new();
    let mut in_steps = false;
    for (n, l) in lines.iter().enumerate().skip(at) {
        let t = l.trim();
        if a.title.is_empty() {
            if t.is_empty() {
                continue;
            }
            match t.strip_prefix("# ") {
                Some(title) => a.title = title.trim().to_string(),
                None => {
                    return Err(AppError::invalid(
                        format!("line {}", n + 1),
                        "an article starts with a `# title` line",
                    ))
                }
            }
            continue;
        }
        if let Some(h) = t.strip_prefix("## ") {
            in_steps = matches!(
                h.trim().to_lowercase().as_str(),
                "steps" | "步骤" | "操作步骤"
            );
            if !in_steps {
                body.push(h.trim().to_string());
            }
            continue;
        }
        if in_steps {
            if t.is_empty() {
                continue;
            }
            let step = t
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start_matches(['.', ')', '-', '*', '、'])
                .trim();
            if step.is_empty() || step.len() == t.len() && !t.starts_with(['-', '*']) {
                return Err(AppError::invalid(
                    format!("line {}", n + 1),
                    "a line under `## Steps` is a list item (`1. ...` or `- ...`)",
                ));
            }
            a.steps.push(step.to_string());
        } else {
            body.push(t.to_string());
        }
    }
    if a.title.is_empty() {
        return Err(AppError::invalid(
            "line 1",
            "an article needs a `# title` line",
        ));
    }
    if a.id.is_empty() {
        return Err(AppError::invalid(
            "id",
            "a Markdown article needs an id: `id:` in its front matter (or `?id=`)",
        ));
    }
    a.body = body.join("\n").trim().to_string();
    a.checked(&format!("{name}."), cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> KbConfig {
        KbConfig::default()
    }

    fn field(e: AppError) -> String {
        match e {
            AppError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn jsonl_and_csv_name_the_bad_line() {
        let ok = r#"{"id":"a","title":"T","body":"B"}"#;
        assert_eq!(parse(ok, Format::Jsonl, "", &cfg()).unwrap().len(), 1);
        let bad = format!("{ok}\n\n{{\"id\":\"b\",\"title\":\"T\"}}\n");
        assert_eq!(
            field(parse(&bad, Format::Jsonl, "", &cfg()).unwrap_err()),
            "line 3"
        );
        let empty = format!("{ok}\n{{\"id\":\"b\",\"title\":\" \",\"body\":\"B\"}}");
        assert_eq!(
            field(parse(&empty, Format::Jsonl, "", &cfg()).unwrap_err()),
            "line 2.title"
        );
        let csv = "id,title,body,tags,steps\na,T,B,x|y,one|two\nb,T2,\"B, two\",,\n";
        let v = parse(csv, Format::Csv, "", &cfg()).unwrap();
        assert_eq!(
            (v[0].tags.len(), v[0].steps.len(), v[1].body.as_str()),
            (2, 2, "B, two")
        );
        let bad = "id,title,body\na,T,B\nb,T\n";
        assert_eq!(
            field(parse(bad, Format::Csv, "", &cfg()).unwrap_err()),
            "line 3"
        );
        let bad = "id,title,body\na,T,B\nb c,T,B\n";
        assert_eq!(
            field(parse(bad, Format::Csv, "", &cfg()).unwrap_err()),
            "line 3.id"
        );
        assert_eq!(
            field(parse("id,nope\n", Format::Csv, "", &cfg()).unwrap_err()),
            "line 1"
        );
    }

    #[test]
    fn markdown_articles() {
        let md = "---\nid: pw\nlanguage: zh\ntags: [account, 密码]\n---\n# 忘记密码怎么办\n\n在登录页点击「忘记密码」。\n\n## 步骤\n1. 打开登录页\n2. 点击「忘记密码」\n";
        let a = parse(md, Format::Markdown, "file", &cfg())
            .unwrap()
            .remove(0);
        assert_eq!((a.id.as_str(), a.title.as_str()), ("pw", "忘记密码怎么办"));
        assert_eq!(a.steps, vec!["打开登录页", "点击「忘记密码」"]);
        assert_eq!(a.tags, vec!["account", "密码"]);
        assert_eq!(a.body, "在登录页点击「忘记密码」。");
        let no_title = "Some text\n# Title\n";
        assert_eq!(
            field(parse(no_title, Format::Markdown, "f", &cfg()).unwrap_err()),
            "line 1"
        );
        let bad_fm = "---\nid pw\n---\n# T\nB\n";
        assert_eq!(
            field(parse(bad_fm, Format::Markdown, "f", &cfg()).unwrap_err()),
            "line 2"
        );
        let bad_step = "# T\nB\n## Steps\n1. ok\nnot a step\n";
        assert_eq!(
            field(parse(bad_step, Format::Markdown, "f", &cfg()).unwrap_err()),
            "line 5"
        );
    }
}
