//! FilenamePattern: does an outbound file name look like staged or disguised data?
//!
//! Three independent patterns, each configurable in `[thresholds]`:
//!
//! * **archive extension**: the last extension is in `filename_archive_extensions`
//!   (`.zip`, `.7z`, `.tar.gz` through `gz` …);
//! * **double extension**: a document or media extension directly followed by an executable
//!   or archive extension (`invoice.pdf.exe`, `salaries.xlsx.zip`). Two archive layers
//!   (`backup.tar.gz`) and versions (`setup.1.2.exe`) are not double extensions. A name with
//!   a Unicode bidirectional override (`invoice\u{202e}fdp.exe`, which displays as
//!   `invoiceexe.pdf`) counts as disguised too;
//! * **random stem**: the name without its extensions is a GUID, a long hex string, a
//!   base64-like token, or a letters-and-digits string with high Shannon entropy that
//!   switches character class often, as generated names do and human names rarely do.
//!
//! The checks are pure functions of the name; they run once per file, not per packet.

use std::collections::BTreeSet;

use crate::config::ThresholdsConfig;

/// Random-stem checks need this share of adjacent characters to change class (lower, upper,
/// digit, other). Random base62 tokens switch about 60 % of the time, English words and
/// CamelCase names far less.
const MIN_CLASS_SWITCH_RATIO: f64 = 0.4;

/// File names longer than this are judged on their first this-many bytes of basename.
const MAX_NAME_BYTES: usize = 1024;

/// The configured patterns.
#[derive(Debug, Clone)]
pub struct FilenamePatterns {
    archive: BTreeSet<String>,
    document: BTreeSet<String>,
    executable: BTreeSet<String>,
    hex_min_len: usize,
    base64_min_len: usize,
    entropy_min_len: usize,
    entropy_bits: f64,
}

/// What matched in one name.
#[derive(Debug, Clone, PartialEq)]
pub struct FilenameFinding {
    /// Which pattern matched: `archive-extension`, `double-extension`, `bidi-override`,
    /// `random-stem`.
    pub pattern: &'static str,
    /// The matching part: `zip`, `pdf.exe`, `hex`, `guid`, `base64`, `entropy`.
    pub detail: String,
    /// What it was compared with, for the alert criteria.
    pub threshold: String,
}

/// The verdict on one name.
#[derive(Debug, Clone, PartialEq)]
pub struct FilenameVerdict {
    /// Every pattern that matched, in the order archive, double, bidi, random.
    pub findings: Vec<FilenameFinding>,
    /// Shannon entropy of the stem, bits per character.
    pub stem_entropy: f64,
}

impl FilenamePatterns {
    /// The patterns of a validated `[thresholds]` section.
    pub fn from_config(t: &ThresholdsConfig) -> FilenamePatterns {
        let set = |list: &[crate::config::Extension]| {
            list.iter().map(|e| e.as_str().to_owned()).collect()
        };
        FilenamePatterns {
            archive: set(&t.filename_archive_extensions),
            document: set(&t.filename_document_extensions),
            executable: set(&t.filename_executable_extensions),
            hex_min_len: t.filename_hex_min_len.as_usize(),
            base64_min_len: t.filename_base64_min_len.as_usize(),
            entropy_min_len: t.filename_entropy_min_len.as_usize(),
            entropy_bits: t.filename_entropy_bits.get(),
        }
    }

    /// Judges `name` (a path is reduced to its last component). `None` when nothing matched.
    pub fn judge(&self, name: &str) -> Option<FilenameVerdict> {
        let base = basename(name);
        let exts = extensions(base);
        let mut findings = Vec::new();

        if let Some(last) = exts.last().filter(|e| self.archive.contains(*e)) {
            findings.push(FilenameFinding {
                pattern: "archive-extension",
                detail: last.clone(),
                threshold: "filename_archive_extensions".to_owned(),
            });
        }
        if let [.., inner, outer] = exts.as_slice() {
            let outer_risky = self.executable.contains(outer) || self.archive.contains(outer);
            if outer_risky && self.document.contains(inner) {
                findings.push(FilenameFinding {
                    pattern: "double-extension",
                    detail: format!("{inner}.{outer}"),
                    threshold: "document extension + executable or archive extension".to_owned(),
                });
            }
        }
        if base.chars().any(is_bidi_control) {
            findings.push(FilenameFinding {
                pattern: "bidi-override",
                detail: "unicode bidirectional control character".to_owned(),
                threshold: "none allowed".to_owned(),
            });
        }

        let stem = self.stem(base);
        let entropy = shannon_bits(stem);
        if let Some((kind, threshold)) = self.random_kind(stem, entropy) {
            findings.push(FilenameFinding {
                pattern: "random-stem",
                detail: kind.to_owned(),
                threshold,
            });
        }
        (!findings.is_empty()).then_some(FilenameVerdict {
            findings,
            stem_entropy: entropy,
        })
    }

    /// True when `ext` (lower-case) is in any of the lists.
    fn listed(&self, ext: &str) -> bool {
        self.archive.contains(ext) || self.document.contains(ext) || self.executable.contains(ext)
    }

    /// The name without trailing extensions: listed ones, and a final short one of letters
    /// and digits (`.dat`, `.bin`). Leading dots belong to the stem (`.profile`).
    fn stem<'a>(&self, base: &'a str) -> &'a str {
        let lead = base.len() - base.trim_start_matches('.').len();
        let mut end = base.len();
        let mut last = true;
        while let Some(dot) = base.get(..end).and_then(|head| head.rfind('.')) {
            if dot < lead.max(1) {
                break;
            }
            let ext = base.get(dot + 1..end).unwrap_or("").trim().to_lowercase();
            let short =
                (1..=5).contains(&ext.len()) && ext.chars().all(|c| c.is_ascii_alphanumeric());
            if self.listed(&ext) || (last && short) {
                end = dot;
                last = false;
            } else {
                break;
            }
        }
        base.get(..end).unwrap_or(base)
    }

    /// Which random-stem check `stem` passes, with the threshold it passed.
    fn random_kind(&self, stem: &str, entropy: f64) -> Option<(&'static str, String)> {
        let len = stem.chars().count();
        if is_guid(stem) {
            return Some(("guid", "8-4-4-4-12 hex digits".to_owned()));
        }
        if len >= self.hex_min_len
            && stem.chars().all(|c| c.is_ascii_hexdigit())
            && stem.chars().any(|c| c.is_ascii_digit())
            && stem.chars().any(|c| c.is_ascii_alphabetic())
        {
            return Some(("hex", format!("hex digits, length >= {}", self.hex_min_len)));
        }
        let switches = class_switch_ratio(stem);
        if len >= self.base64_min_len
            && stem
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | '_' | '-'))
            && stem.chars().any(|c| c.is_ascii_lowercase())
            && stem.chars().any(|c| c.is_ascii_uppercase())
            && stem.chars().any(|c| c.is_ascii_digit())
            && switches >= MIN_CLASS_SWITCH_RATIO
        {
            return Some((
                "base64",
                format!(
                    "base64 alphabet, both cases and digits, length >= {}",
                    self.base64_min_len
                ),
            ));
        }
        if len >= self.entropy_min_len
            && stem.chars().all(|c| c.is_ascii_alphanumeric())
            && entropy >= self.entropy_bits
            && switches >= MIN_CLASS_SWITCH_RATIO
        {
            return Some((
                "entropy",
                format!(
                    "letters and digits, length >= {}, entropy >= {} bits/char",
                    self.entropy_min_len, self.entropy_bits
                ),
            ));
        }
        None
    }
}

/// The extensions of a basename, lower-case and trimmed, in order (`a.PDF .exe` gives
/// `pdf`, `exe`). Leading dots start a hidden name, not an extension.
fn extensions(base: &str) -> Vec<String> {
    let rest = base.trim_start_matches('.');
    rest.split('.')
        .skip(1)
        .map(|e| e.trim().to_lowercase())
        .collect()
}

/// The last path component (`/` or `\` separated), without trailing dots and spaces (which
/// Windows drops) and cut at [`MAX_NAME_BYTES`].
fn basename(name: &str) -> &str {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let base = base.trim_end_matches(['.', ' ', '\0']);
    let mut cut = base.len().min(MAX_NAME_BYTES);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    base.get(..cut).unwrap_or(base)
}

/// Unicode bidirectional controls used to disguise extensions (U+202A–U+202E, U+2066–U+2069).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `{8}-{4}-{4}-{4}-{12}` hex digits, optionally in braces.
fn is_guid(s: &str) -> bool {
    let s = s
        .strip_prefix('{')
        .and_then(|x| x.strip_suffix('}'))
        .unwrap_or(s);
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Share of adjacent character pairs that change class (lower, upper, digit, other).
fn class_switch_ratio(s: &str) -> f64 {
    fn class(c: char) -> u8 {
        if c.is_ascii_lowercase() {
            0
        } else if c.is_ascii_uppercase() {
            1
        } else if c.is_ascii_digit() {
            2
        } else {
            3
        }
    }
    let mut pairs = 0u32;
    let mut switches = 0u32;
    let mut prev = None;
    for c in s.chars() {
        let k = class(c);
        if let Some(p) = prev {
            pairs += 1;
            if p != k {
                switches += 1;
            }
        }
        prev = Some(k);
    }
    if pairs == 0 {
        0.0
    } else {
        f64::from(switches) / f64::from(pairs)
    }
}

/// Shannon entropy of `s`'s bytes, bits per byte.
pub(crate) fn shannon_bits(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c += 1;
        }
    }
    let n = s.len() as f64;
    if n == 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n;
            -p * p.log2()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns() -> FilenamePatterns {
        FilenamePatterns::from_config(&ThresholdsConfig::default())
    }

    /// The `pattern:detail` strings for `name`, empty when nothing matched.
    fn judge(name: &str) -> Vec<String> {
        patterns()
            .judge(name)
            .map(|v| {
                v.findings
                    .iter()
                    .map(|f| format!("{}:{}", f.pattern, f.detail))
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn archive_extensions_by_last_extension() {
        assert_eq!(judge("backup.ZIP"), ["archive-extension:zip"]);
        assert_eq!(judge("dir/sub\\site.tar.gz"), ["archive-extension:gz"]);
        assert_eq!(judge("disk.iso"), ["archive-extension:iso"]);
        assert_eq!(judge("a.7z."), ["archive-extension:7z"]);
        assert!(judge("zip").is_empty());
        assert!(judge("report.zip.txt").is_empty());
        assert!(judge(".zip").is_empty(), "a hidden file named zip");
    }

    #[test]
    fn double_extensions() {
        assert_eq!(judge("report.pdf.exe"), ["double-extension:pdf.exe"]);
        assert_eq!(judge("Invoice.PDF   .Scr"), ["double-extension:pdf.scr"]);
        assert_eq!(
            judge("salaries.xlsx.zip"),
            ["archive-extension:zip", "double-extension:xlsx.zip"]
        );
        // Two archive layers and version numbers are ordinary.
        assert_eq!(judge("site.tar.gz"), ["archive-extension:gz"]);
        assert!(judge("setup.1.2.exe").is_empty());
        assert!(judge("notes.txt").is_empty());
        assert!(judge("tool.exe").is_empty());
        assert_eq!(
            judge("invoice\u{202e}fdp.exe"),
            ["bidi-override:unicode bidirectional control character"]
        );
    }

    #[test]
    fn random_stems() {
        assert_eq!(
            judge("3f2504e0-4f89-11d3-9a0c-0305e82c3301.dat"),
            ["random-stem:guid"]
        );
        assert_eq!(
            judge("{3F2504E0-4F89-11D3-9A0C-0305E82C3301}"),
            ["random-stem:guid"]
        );
        assert_eq!(judge("9f86d081884c7d65"), ["random-stem:hex"]);
        assert_eq!(
            judge("9f86d081884c7d659a2feaa0c55ad015.zip"),
            ["archive-extension:zip", "random-stem:hex"]
        );
        assert_eq!(judge("aGVsbG8gd29ybGQx-Zk9q"), ["random-stem:base64"]);
        assert_eq!(judge("xK9mQ2vL7pR3"), ["random-stem:entropy"]);
        // Hex needs 16 characters, letters and digits.
        assert!(judge("9f86d081884c7d6").is_empty());
        assert!(judge("20240312101522123456").is_empty());
        assert!(judge("deadbeefcafebabe").is_empty());
    }

    #[test]
    fn ordinary_names_are_not_random() {
        for name in [
            "Quarterly_Report_2024.xlsx",
            "quarterlyreport.docx",
            "IMG_20240312_101522.jpg",
            "backup-2024-03-12.log",
            "customer_database_export.csv",
            "Windows10Upgrade9252.exe",
            "ubuntu-22.04.3-desktop-amd64.deb",
            "python-3.12.1-amd64.exe",
            "node-v20.11.0-linux-x64.pkg",
            "CamelCaseFileNameHere.txt",
            "Screenshot 2024-03-12 at 10.15.22.png",
            "projectplanfinal.pptx",
            ".bashrc",
            "",
        ] {
            assert!(judge(name).is_empty(), "{name}: {:?}", judge(name));
        }
    }

    #[test]
    fn stems_drop_listed_and_short_extensions_only() {
        let p = patterns();
        assert_eq!(p.stem("a1b2.tar.gz"), "a1b2");
        assert_eq!(p.stem("name.v2.final.bin"), "name.v2.final");
        assert_eq!(p.stem(".profile"), ".profile");
        assert_eq!(p.stem("..x.zip"), "..x");
        assert_eq!(p.stem("plain"), "plain");
    }

    #[test]
    fn entropy_and_switches() {
        assert_eq!(shannon_bits(""), 0.0);
        assert_eq!(shannon_bits("aaaa"), 0.0);
        assert!((shannon_bits("abcd") - 2.0).abs() < 1e-12);
        assert_eq!(class_switch_ratio("aA1"), 1.0);
        assert_eq!(class_switch_ratio("abc"), 0.0);
        assert_eq!(class_switch_ratio("a"), 0.0);
    }

    #[test]
    fn configured_lists_replace_the_defaults() {
        let cfg = crate::config::Config::from_toml_str(
            "[thresholds]\nfilename_archive_extensions = [\".PKG\"]\nfilename_hex_min_len = 8\n",
            "t",
        )
        .unwrap();
        let p = FilenamePatterns::from_config(&cfg.thresholds);
        assert_eq!(
            p.judge("x.pkg").map(|v| v.findings.len()),
            Some(1),
            "a listed extension"
        );
        assert!(p.judge("x.zip").is_none(), "no longer listed");
        assert!(p.judge("a1b2c3d4").is_some(), "hex from 8 characters");
    }

    #[test]
    fn long_and_odd_names_do_not_panic() {
        let p = patterns();
        let long = "é".repeat(5000) + ".zip";
        let _ = p.judge(&long);
        for name in ["....", ". . .", "\0\0.zip", "a.\u{202e}", "/", "\\", "a/b/"] {
            let _ = p.judge(name);
        }
    }
}
