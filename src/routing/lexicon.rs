//! Risk lexicon: a screening aid that spots words of suicide and self-harm in what a caller
//! writes (pre-chat form, chat messages, transcripts) and proposes a [`RiskLevel`].
//!
//! It only ever *raises* risk (the gateway sends `Command::RaiseRisk`, which never lowers it):
//! a false positive puts someone a little earlier in the queue, a false negative may cost a life,
//! so the built-in terms lean towards over-triage. A human always reviews.
//!
//! # Format
//! ```toml
//! [[term]]
//! text = "想死"
//! level = "high"
//!
//! [[term]]
//! text = "tonight"
//! level = "imminent"
//! requires = "high"   # counts only when a term of at least `high` also matched
//! ```
//! `level` is one of `none`, `low`, `medium`, `high`, `imminent`. A term with `requires` is a
//! *qualifier* (a time such as "tonight"/"今晚", or a means such as "pills"/"药"): on its own it
//! means nothing, next to a stated intent it makes that intent imminent.
//!
//! # Matching
//! Text and terms are lower-cased (Unicode), full-width ASCII is read as ASCII, typographic
//! apostrophes as `'` and dashes as `-`, zero-width characters are dropped, whitespace between two
//! Chinese characters is dropped and other runs of whitespace collapse to one space, so English
//! matches case-insensitively, in full-width and across line breaks, and Chinese across spaces and
//! line breaks. A term that begins (ends) with an ASCII letter or digit only matches where the
//! text has no ASCII letter or digit just before (after) it, so "die" does not match "diet";
//! Chinese terms match anywhere. Matching is one Aho-Corasick pass over the text, linear in its
//! length.

use aho_corasick::{AhoCorasick, MatchKind};
use serde::Deserialize;

use crate::domain::RiskLevel;

/// Why a lexicon could not be built. The message names the offending term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexiconError {
    #[error("risk lexicon is not valid TOML: {0}")]
    Toml(String),
    #[error("risk lexicon term #{index} is empty")]
    EmptyTerm { index: usize },
    #[error("risk lexicon term #{index} ({text:?}): `requires` must be a level above none")]
    BadRequires { index: usize, text: String },
    #[error("risk lexicon could not be compiled: {0}")]
    Build(String),
}

/// One entry of the lexicon file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LexiconTerm {
    pub text: String,
    pub level: RiskLevel,
    /// The term counts only if another (unconditional) term of at least this level matched.
    #[serde(default)]
    pub requires: Option<RiskLevel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LexiconFile {
    #[serde(default)]
    term: Vec<LexiconTerm>,
}

#[derive(Debug, Clone)]
struct Compiled {
    level: RiskLevel,
    requires: Option<RiskLevel>,
    word_start: bool,
    word_end: bool,
}

/// A compiled risk lexicon. Cheap to share (`&self` scans); build once at start-up.
#[derive(Debug, Clone)]
pub struct RiskLexicon {
    matcher: Option<AhoCorasick>,
    terms: Vec<Compiled>,
}

/// The built-in terms: (text, level, requires).
const DEFAULT_TERMS: &[(&str, RiskLevel, Option<RiskLevel>)] = {
    use RiskLevel::{High, Imminent, Medium};
    &[
        // Stated wish or intent to die (high).
        ("想死", High, None),
        ("不想活", High, None),
        ("自杀", High, None),
        ("轻生", High, None),
        ("跳楼", High, None),
        ("跳河", High, None),
        ("割腕", High, None),
        ("上吊", High, None),
        ("烧炭", High, None),
        ("结束生命", High, None),
        ("结束自己", High, None),
        ("活不下去", High, None),
        ("去死", High, None),
        ("寻死", High, None),
        ("了结自己", High, None),
        ("kill myself", High, None),
        ("killing myself", High, None),
        ("end my life", High, None),
        ("ending my life", High, None),
        ("take my own life", High, None),
        ("suicide", High, None),
        ("suicidal", High, None),
        ("want to die", High, None),
        ("wanna die", High, None),
        ("better off dead", High, None),
        ("overdose", High, None),
        ("no reason to live", High, None),
        // Self-harm and hopelessness (medium).
        ("自残", Medium, None),
        ("自伤", Medium, None),
        ("伤害自己", Medium, None),
        ("撑不下去", Medium, None),
        ("活着没意思", Medium, None),
        ("绝望", Medium, None),
        ("hurt myself", Medium, None),
        ("hurting myself", Medium, None),
        ("self harm", Medium, None),
        ("self-harm", Medium, None),
        ("cutting myself", Medium, None),
        ("hopeless", Medium, None),
        ("can't go on", Medium, None),
        ("cant go on", Medium, None),
        ("no way out", Medium, None),
        // An act under way or prepared (imminent on its own).
        ("写好了遗书", Imminent, None),
        ("遗书写好了", Imminent, None),
        ("已经割腕", Imminent, None),
        ("已经吃了安眠药", Imminent, None),
        ("吃了一整瓶", Imminent, None),
        ("站在楼顶", Imminent, None),
        ("站在天台", Imminent, None),
        ("took an overdose", Imminent, None),
        ("took all my pills", Imminent, None),
        ("took all the pills", Imminent, None),
        ("wrote my suicide note", Imminent, None),
        ("wrote a suicide note", Imminent, None),
        ("i have a gun", Imminent, None),
        // Time or means next to a stated intent (imminent only together with a high term).
        ("今晚", Imminent, Some(High)),
        ("今天晚上", Imminent, Some(High)),
        ("今天就", Imminent, Some(High)),
        ("现在就", Imminent, Some(High)),
        ("马上", Imminent, Some(High)),
        ("等会儿就", Imminent, Some(High)),
        ("药", Imminent, Some(High)),
        ("绳子", Imminent, Some(High)),
        ("刀", Imminent, Some(High)),
        ("楼顶", Imminent, Some(High)),
        ("天台", Imminent, Some(High)),
        // The same in traditional characters (Hong Kong, Macao, Taiwan and overseas callers),
        // where they differ from the simplified ones above.
        ("自殺", High, None),
        ("輕生", High, None),
        ("跳樓", High, None),
        ("燒炭", High, None),
        ("結束生命", High, None),
        ("結束自己", High, None),
        ("尋死", High, None),
        ("了結自己", High, None),
        ("自殘", Medium, None),
        ("自傷", Medium, None),
        ("傷害自己", Medium, None),
        ("撐不下去", Medium, None),
        ("活著沒意思", Medium, None),
        ("絕望", Medium, None),
        ("寫好了遺書", Imminent, None),
        ("遺書寫好了", Imminent, None),
        ("已經割腕", Imminent, None),
        ("已經吃了安眠藥", Imminent, None),
        ("站在樓頂", Imminent, None),
        ("現在就", Imminent, Some(High)),
        ("馬上", Imminent, Some(High)),
        ("等會兒就", Imminent, Some(High)),
        ("藥", Imminent, Some(High)),
        ("繩子", Imminent, Some(High)),
        ("樓頂", Imminent, Some(High)),
        ("tonight", Imminent, Some(High)),
        ("right now", Imminent, Some(High)),
        ("now", Imminent, Some(High)),
        ("today", Imminent, Some(High)),
        ("pills", Imminent, Some(High)),
        ("rope", Imminent, Some(High)),
        ("gun", Imminent, Some(High)),
        ("knife", Imminent, Some(High)),
        ("bridge", Imminent, Some(High)),
        ("roof", Imminent, Some(High)),
    ]
};

/// Lower-case and collapse whitespace runs into one space (leading/trailing whitespace kept as
/// one space so that word boundaries still see it).
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    // Whether the last character written before the current whitespace run is a Chinese one.
    let mut after_han = false;
    for ch in text.chars() {
        if ch.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else if is_invisible(ch) {
            continue;
        } else {
            let ch = fold_width(ch);
            // Chinese is written without spaces: one between two Chinese characters ("想 死")
            // would only hide a term.
            if in_space && after_han && is_han(ch) {
                out.pop();
            }
            in_space = false;
            after_han = is_han(ch);
            // Most lines are ASCII or CJK, which lower-case to themselves without a table lookup.
            if ch.is_ascii() {
                out.push(ch.to_ascii_lowercase());
            } else if is_caseless_cjk(ch) {
                out.push(ch);
            } else {
                out.extend(ch.to_lowercase());
            }
        }
    }
    out
}

/// Zero-width characters (pasted text, some keyboards) that would split a term in two.
fn is_invisible(ch: char) -> bool {
    matches!(
        ch,
        '\u{00AD}' | '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
    )
}

/// Full-width ASCII (typed by a Chinese input method in full-width mode) as ASCII, and the
/// typographic apostrophes and dashes phones type as `'` and `-`, so "ＫＩＬＬ ＭＹＳＥＬＦ",
/// "can’t" and "self‑harm" match.
fn fold_width(ch: char) -> char {
    match ch {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(ch) - 0xFEE0).unwrap_or(ch),
        '\u{2018}' | '\u{2019}' | '\u{02BC}' => '\'',
        // Hyphens and dashes as typed by phones and word processors: "self‑harm", "self—harm".
        '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
        _ => ch,
    }
}

/// Chinese characters (the unified ideographs and their first extension).
fn is_han(ch: char) -> bool {
    matches!(ch, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}')
}

/// CJK punctuation, Kana, Hangul and ideographs: characters without case.
fn is_caseless_cjk(ch: char) -> bool {
    matches!(ch, '\u{3000}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7A3}')
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

impl RiskLexicon {
    /// Builds a lexicon from terms. Empty terms and a `requires` of `none` are errors.
    pub fn new(terms: Vec<LexiconTerm>) -> Result<Self, LexiconError> {
        let mut patterns = Vec::with_capacity(terms.len());
        let mut compiled = Vec::with_capacity(terms.len());
        for (i, term) in terms.into_iter().enumerate() {
            let index = i + 1;
            let pattern = normalize(term.text.trim());
            if pattern.is_empty() {
                return Err(LexiconError::EmptyTerm { index });
            }
            if term.requires == Some(RiskLevel::None) {
                return Err(LexiconError::BadRequires {
                    index,
                    text: term.text,
                });
            }
            let bytes = pattern.as_bytes();
            compiled.push(Compiled {
                level: term.level,
                requires: term.requires,
                word_start: is_word_byte(bytes[0]),
                word_end: is_word_byte(bytes[bytes.len() - 1]),
            });
            patterns.push(pattern);
        }
        let matcher = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .map_err(|e| LexiconError::Build(e.to_string()))?,
            )
        };
        Ok(RiskLexicon {
            matcher,
            terms: compiled,
        })
    }

    /// Parses the TOML format described in the module documentation.
    pub fn from_toml(source: &str) -> Result<Self, LexiconError> {
        let file: LexiconFile =
            toml::from_str(source).map_err(|e| LexiconError::Toml(e.to_string()))?;
        Self::new(file.term)
    }

    /// The built-in Chinese and English terms.
    pub fn default_terms() -> Self {
        let terms = DEFAULT_TERMS
            .iter()
            .map(|&(text, level, requires)| LexiconTerm {
                text: text.to_owned(),
                level,
                requires,
            })
            .collect();
        // The built-in list is a constant checked by the unit tests; it cannot fail.
        Self::new(terms).unwrap_or(RiskLexicon {
            matcher: None,
            terms: Vec::new(),
        })
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The highest risk level the text matches, or `None` when nothing matched (a matched term
    /// of level `none` also gives `None`).
    pub fn scan(&self, text: &str) -> Option<RiskLevel> {
        let matcher = self.matcher.as_ref()?;
        let hay = normalize(text);
        let bytes = hay.as_bytes();
        let mut plain = RiskLevel::None;
        let mut qualified: Vec<(RiskLevel, RiskLevel)> = Vec::new();
        for m in matcher.find_overlapping_iter(&hay) {
            let term = &self.terms[m.pattern().as_usize()];
            if term.word_start && m.start() > 0 && is_word_byte(bytes[m.start() - 1]) {
                continue;
            }
            if term.word_end && m.end() < bytes.len() && is_word_byte(bytes[m.end()]) {
                continue;
            }
            match term.requires {
                None => plain = plain.max(term.level),
                Some(req) => qualified.push((term.level, req)),
            }
        }
        let best = qualified
            .into_iter()
            .filter(|&(_, req)| plain >= req)
            .map(|(level, _)| level)
            .fold(plain, RiskLevel::max);
        (best > RiskLevel::None).then_some(best)
    }
}

impl Default for RiskLexicon {
    fn default() -> Self {
        Self::default_terms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_terms_build_and_are_all_valid() {
        let terms: Vec<LexiconTerm> = DEFAULT_TERMS
            .iter()
            .map(|&(text, level, requires)| LexiconTerm {
                text: text.to_owned(),
                level,
                requires,
            })
            .collect();
        let lex = RiskLexicon::new(terms).expect("built-in lexicon");
        assert_eq!(lex.len(), DEFAULT_TERMS.len());
        assert!(!RiskLexicon::default_terms().is_empty());
    }

    #[test]
    fn chinese_terms() {
        let lex = RiskLexicon::default_terms();
        assert_eq!(lex.scan("我真的不想活了"), Some(RiskLevel::High));
        assert_eq!(lex.scan("最近总是想死"), Some(RiskLevel::High));
        assert_eq!(lex.scan("我今晚就想自杀"), Some(RiskLevel::Imminent));
        assert_eq!(lex.scan("我现在就去跳楼"), Some(RiskLevel::Imminent));
        assert_eq!(lex.scan("我有时会自残"), Some(RiskLevel::Medium));
        assert_eq!(lex.scan("遗书写好了"), Some(RiskLevel::Imminent));
        assert_eq!(lex.scan("今晚吃什么"), None);
        assert_eq!(lex.scan("考试压力很大，睡不着"), None);
    }

    #[test]
    fn normalize_lower_cases_every_character_as_the_standard_library_does() {
        for ch in (0..=0x10FFFF).filter_map(char::from_u32) {
            if ch.is_whitespace() || is_invisible(ch) {
                continue;
            }
            let expected: String = fold_width(ch).to_lowercase().collect();
            assert_eq!(normalize(&ch.to_string()), expected, "{ch:?}");
        }
        assert_eq!(normalize("  A\t\nb  我 "), " a b 我 ");
    }

    #[test]
    fn english_is_case_insensitive_and_word_bounded() {
        let lex = RiskLexicon::default_terms();
        assert_eq!(lex.scan("I want to KILL MYSELF"), Some(RiskLevel::High));
        assert_eq!(lex.scan("i want to\n  die"), Some(RiskLevel::High));
        assert_eq!(
            lex.scan("I'm going to kill myself tonight."),
            Some(RiskLevel::Imminent)
        );
        assert_eq!(
            lex.scan("Suicide. I have the pills"),
            Some(RiskLevel::Imminent)
        );
        assert_eq!(lex.scan("sometimes I hurt myself"), Some(RiskLevel::Medium));
        assert_eq!(lex.scan("I want to diet tonight"), None);
        assert_eq!(lex.scan("nowhere to go today"), None);
        assert_eq!(lex.scan("the bridge is closed tonight"), None);
        assert_eq!(lex.scan(""), None);
    }

    #[test]
    fn full_width_letters_curly_apostrophes_and_invisible_characters_still_match() {
        let lex = RiskLexicon::default_terms();
        // A Chinese input method in full-width mode types Latin letters as U+FF21….
        assert_eq!(
            lex.scan("Ｉ ＷＡＮＴ ＴＯ ＫＩＬＬ ＭＹＳＥＬＦ"),
            Some(RiskLevel::High)
        );
        assert_eq!(lex.scan("ｓｕｉｃｉｄｅ"), Some(RiskLevel::High));
        // Phones type the typographic apostrophe.
        assert_eq!(lex.scan("I can\u{2019}t go on"), Some(RiskLevel::Medium));
        // A zero-width space pasted between two characters.
        assert_eq!(lex.scan("想\u{200B}死"), Some(RiskLevel::High));
    }

    #[test]
    fn spaces_inside_chinese_dashes_and_a_missing_apostrophe_still_match() {
        let lex = RiskLexicon::default_terms();
        assert_eq!(lex.scan("我 想 死"), Some(RiskLevel::High));
        assert_eq!(lex.scan("真的\n不想活了"), Some(RiskLevel::High));
        assert_eq!(
            lex.scan("I keep thinking about self\u{2011}harm"),
            Some(RiskLevel::Medium)
        );
        assert_eq!(lex.scan("self\u{2014}harm"), Some(RiskLevel::Medium));
        assert_eq!(lex.scan("i cant go on"), Some(RiskLevel::Medium));
        // Whitespace elsewhere still collapses to one space, and words stay words.
        assert_eq!(normalize("想 死 and  die"), "想死 and die");
        assert_eq!(lex.scan("studied all night"), None);
    }

    #[test]
    fn traditional_characters_match_as_simplified_ones_do() {
        let lex = RiskLexicon::default_terms();
        assert_eq!(lex.scan("我真的很想自殺"), Some(RiskLevel::High));
        assert_eq!(lex.scan("活著沒意思"), Some(RiskLevel::Medium));
        assert_eq!(lex.scan("遺書寫好了"), Some(RiskLevel::Imminent));
        assert_eq!(
            lex.scan("我想自殺，藥已經準備好"),
            Some(RiskLevel::Imminent)
        );
        // Every term differs from every other one (a copy would be a mistake in the list).
        let mut texts: Vec<&str> = DEFAULT_TERMS.iter().map(|t| t.0).collect();
        texts.sort_unstable();
        let all = texts.len();
        texts.dedup();
        assert_eq!(texts.len(), all);
    }

    #[test]
    fn highest_level_wins() {
        let lex = RiskLexicon::default_terms();
        assert_eq!(
            lex.scan("hopeless, I took all my pills"),
            Some(RiskLevel::Imminent)
        );
        assert_eq!(lex.scan("绝望，不想活了"), Some(RiskLevel::High));
    }

    #[test]
    fn parses_toml() {
        let lex = RiskLexicon::from_toml(
            r#"
            [[term]]
            text = "想死"
            level = "imminent"

            [[term]]
            text = "Sad"
            level = "low"

            [[term]]
            text = "tonight"
            level = "imminent"
            requires = "low"
            "#,
        )
        .expect("valid lexicon");
        assert_eq!(lex.len(), 3);
        assert_eq!(lex.scan("我想死"), Some(RiskLevel::Imminent));
        assert_eq!(lex.scan("so SAD"), Some(RiskLevel::Low));
        assert_eq!(lex.scan("sad tonight"), Some(RiskLevel::Imminent));
        assert_eq!(lex.scan("tonight"), None);
    }

    #[test]
    fn empty_lexicon_matches_nothing() {
        let lex = RiskLexicon::from_toml("").expect("empty is valid");
        assert!(lex.is_empty());
        assert_eq!(lex.scan("想死"), None);
    }

    #[test]
    fn parse_errors_are_typed() {
        let bad_level = RiskLexicon::from_toml("[[term]]\ntext = \"x\"\nlevel = \"urgent\"\n");
        assert!(matches!(bad_level, Err(LexiconError::Toml(_))));
        let bad_syntax = RiskLexicon::from_toml("[[term]\ntext=");
        assert!(matches!(bad_syntax, Err(LexiconError::Toml(_))));
        let unknown_field =
            RiskLexicon::from_toml("[[term]]\ntext = \"x\"\nlevel = \"high\"\nfoo = 1\n");
        assert!(matches!(unknown_field, Err(LexiconError::Toml(_))));
        let empty = RiskLexicon::from_toml("[[term]]\ntext = \"  \"\nlevel = \"high\"\n");
        assert_eq!(empty.unwrap_err(), LexiconError::EmptyTerm { index: 1 });
        let requires_none = RiskLexicon::from_toml(
            "[[term]]\ntext = \"x\"\nlevel = \"high\"\nrequires = \"none\"\n",
        );
        assert!(matches!(
            requires_none,
            Err(LexiconError::BadRequires { index: 1, .. })
        ));
        let msg = RiskLexicon::from_toml("[[term]]\ntext = 3\nlevel = \"high\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("risk lexicon is not valid TOML"), "{msg}");
    }
}
