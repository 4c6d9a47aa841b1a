//! A small CSV writer (RFC 4180: comma-separated, CRLF line ends, fields quoted when they hold a
//! comma, a quote or a line break). Reports are read in spreadsheets, so a field that starts
//! with `=`, `+`, `-` or `@` and is not a number is prefixed with `'` (no formula injection).

pub struct Writer {
    out: String,
    columns: usize,
}

impl Writer {
    pub fn new(header: &[&str]) -> Writer {
        let mut w = Writer {
            out: String::new(),
            columns: header.len(),
        };
        let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        w.row(&header);
        w
    }

    pub fn row(&mut self, fields: &[String]) {
        debug_assert_eq!(fields.len(), self.columns, "a CSV row with the wrong width");
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(&quote(field));
        }
        self.out.push_str("\r\n");
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn quote(field: &str) -> String {
    let risky = field.starts_with(['=', '+', '-', '@']) && field.parse::<f64>().is_err();
    let field = if risky {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_what_needs_it() {
        let mut w = super::Writer::new(&["a", "b", "c"]);
        w.row(&["x,y".into(), "say \"hi\"".into(), "-1.5".into()]);
        w.row(&["=SUM(A1)".into(), "line\nbreak".into(), String::new()]);
        assert_eq!(
            w.finish(),
            "a,b,c\r\n\"x,y\",\"say \"\"hi\"\"\",-1.5\r\n'=SUM(A1),\"line\nbreak\",\r\n"
        );
    }
}
