//! The console page: one HTML document, its stylesheet, script and icon, embedded in the binary
//! (no CDN, no external font), served with a strict Content-Security-Policy. Every URL the page
//! uses is relative, so it works behind `kubectl port-forward` and under a path prefix such as
//! `kubectl proxy`'s.

pub const INDEX_HTML: &str = include_str!("assets/index.html");
pub const CONSOLE_CSS: &str = include_str!("assets/console.css");
pub const CONSOLE_JS: &str = include_str!("assets/console.js");
pub const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

/// Only this origin's own files: no inline script or style, no external anything, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// An embedded file by its path on the admin port: content type and body.
pub fn lookup(path: &str) -> Option<(&'static str, &'static str)> {
    match path {
        "/" | "/index.html" => Some(("text/html; charset=utf-8", INDEX_HTML)),
        "/console.css" => Some(("text/css; charset=utf-8", CONSOLE_CSS)),
        "/console.js" => Some(("text/javascript; charset=utf-8", CONSOLE_JS)),
        "/favicon.svg" | "/favicon.ico" => Some(("image/svg+xml", FAVICON_SVG)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_references_only_its_own_relative_files() {
        for text in [INDEX_HTML, CONSOLE_CSS, CONSOLE_JS] {
            // The SVG namespace is a name, not a resource.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            for banned in ["http://", "https://", "//cdn", "@import", "url(", "eval("] {
                assert!(!text.contains(banned), "{banned} in an asset");
            }
        }
        assert!(!INDEX_HTML.contains("<script>"), "no inline script");
        assert!(!INDEX_HTML.contains("style="), "no inline style");
        assert!(INDEX_HTML.contains(r#"src="console.js""#));
        assert!(INDEX_HTML.contains(r#"href="console.css""#));
    }
}
