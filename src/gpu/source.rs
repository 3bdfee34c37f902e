//! The kernel's WGSL source, specialised for one (n_firms, n_segments) shape.
//!
//! The kernel's data layout is generated from the parameter and output tables
//! ([`super::layout::wgsl_declarations`]) and put in place of the shader's
//! `// @layout` line, so no offset is written by hand in WGSL.
//!
//! `shaders/moat.wgsl` is written with ordinary loops over firms and segments
//! (`for (var j = 0u; j < N_FIRMS; j++) { ... }`) so that it reads like the CPU
//! reference. Before compiling it for a shape, the host expands every such loop
//! into one block per index, each opening with `let j = <index>u;`. Every index
//! into a private array then is a constant, whatever the driver's loop unroller
//! decides, and that matters twice over on llvmpipe (the software Vulkan that CI
//! runs):
//!
//! - llvmpipe keeps a private array that any loop indexes in memory, and pays a
//!   load, a masked blend and a store for every element touched; with constant
//!   indices the elements become registers. Measured with `valgrind
//!   --tool=cachegrind` on configs/release-timing.toml (4 firms, 3 segments): 27%
//!   fewer instructions per scenario than leaving the unrolling to Mesa's NIR.
//! - llvmpipe silently ends an invocation's loops after 65,535 iterations in all
//!   (see [`super::LLVMPIPE_LOOP_CAP`]); loops that are gone cannot count.
//!
//! The private arrays are also sized to the shape (`MAX_FIRMS`, `MAX_SEGMENTS`).

/// The kernel as written, compiled into the binary.
pub const SHADER_SOURCE: &str = include_str!("../../shaders/moat.wgsl");

/// The reduce passes of `[reduce]` runs (`super::reduce`), compiled into the binary
/// as written: they read the kernel's output buffer, whose offsets they get from
/// the host at run time.
pub const REDUCE_SOURCE: &str = include_str!("../../shaders/reduce.wgsl");

/// The shader's line that the generated layout replaces.
const LAYOUT_MARKER: &str = "// @layout\n";

const MAX_FIRMS_DECL: &str = "const MAX_FIRMS: u32 = 8u;";
const MAX_SEGMENTS_DECL: &str = "const MAX_SEGMENTS: u32 = 8u;";

/// The kernel with its generated layout, for any shape (array lengths MAX_FIRMS
/// and MAX_SEGMENTS, loops as written).
pub fn full_source() -> String {
    assert!(SHADER_SOURCE.matches(LAYOUT_MARKER).count() == 1, "moat.wgsl has one `// @layout` line");
    SHADER_SOURCE.replacen(LAYOUT_MARKER, &super::layout::wgsl_declarations(), 1)
}

/// The kernel's source for one shape: the generated layout in place, array lengths
/// set to the shape and every loop over firms or segments expanded (see the module docs).
pub fn specialized_source(n_firms: usize, n_segments: usize) -> String {
    assert!(SHADER_SOURCE.contains(MAX_FIRMS_DECL) && SHADER_SOURCE.contains(MAX_SEGMENTS_DECL));
    let src = full_source().replacen(MAX_FIRMS_DECL, &format!("const MAX_FIRMS: u32 = {n_firms}u;"), 1).replacen(
        MAX_SEGMENTS_DECL,
        &format!("const MAX_SEGMENTS: u32 = {n_segments}u;"),
        1,
    );
    unroll(&src, &[("N_FIRMS", n_firms), ("N_SEGMENTS", n_segments)])
}

/// Expands every `for (var X = 0u; X < BOUND; X++) { BODY }` whose BOUND is one of
/// `bounds` into `{ let X = 0u; BODY }{ let X = 1u; BODY }...`, innermost loops
/// included (they are expanded inside each copy). A body must not `break` or
/// `continue`: in a copy those would act on an enclosing loop.
fn unroll(src: &str, bounds: &[(&str, usize)]) -> String {
    let mut out = String::with_capacity(src.len() * 4);
    let mut rest = src;
    while let Some((start, var, count)) = find_loop(rest, bounds) {
        out.push_str(&rest[..start]);
        let open = start + rest[start..].find('{').expect("loop header has a brace");
        let close = matching_brace(rest, open);
        let body = unroll(&rest[open + 1..close], bounds);
        assert!(!has_jump(&body), "moat.wgsl: a loop over firms or segments (counter {var}) breaks or continues, so it cannot be expanded");
        for i in 0..count {
            out.push_str(&format!("{{ let {var} = {i}u;{body}}}"));
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The first expandable loop header in `src`: (byte offset, counter, trip count).
fn find_loop<'a>(src: &'a str, bounds: &[(&str, usize)]) -> Option<(usize, &'a str, usize)> {
    let mut from = 0;
    while let Some(at) = src[from..].find("for (var ").map(|i| from + i) {
        from = at + 1;
        let line_start = src[..at].rfind('\n').map_or(0, |i| i + 1);
        if src[line_start..at].contains("//") {
            continue; // in a comment
        }
        let header = &src[at..];
        let Some(end) = header.find(')') else { continue };
        // "for (var X = 0u; X < BOUND; X++"
        let parts: Vec<&str> = header["for (var ".len()..end].split(';').map(str::trim).collect();
        let [init, cond, step] = parts[..] else { continue };
        let Some(var) = init.strip_suffix(" = 0u") else { continue };
        let Some(bound) = cond.strip_prefix(var).and_then(|c| c.strip_prefix(" < ")) else { continue };
        if step != format!("{var}++") {
            continue;
        }
        if let Some(&(_, count)) = bounds.iter().find(|(b, _)| *b == bound) {
            return Some((at, var, count));
        }
    }
    None
}

/// The byte offset of the `}` that closes the `{` at `open`, skipping `//` comments.
fn matching_brace(src: &str, open: usize) -> usize {
    let bytes = src.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i += src[i..].find('\n').unwrap_or(src.len() - i);
                continue;
            }
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("moat.wgsl: unbalanced braces after byte {open}");
}

/// Whether `body` (comments aside) holds a `break` or `continue` anywhere.
fn has_jump(body: &str) -> bool {
    body.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .flat_map(|l| l.split(|c: char| !(c.is_alphanumeric() || c == '_')))
        .any(|w| w == "break" || w == "continue")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_nested_loops_with_constant_counters() {
        let src = "fn f() { for (var j = 0u; j < N_FIRMS; j++) { for (var k = 0u; k < N_SEGMENTS; k++) { a[j][k] = 1.0; } } }";
        let out = unroll(src, &[("N_FIRMS", 2), ("N_SEGMENTS", 3)]);
        assert!(!out.contains("for ("), "{out}");
        assert_eq!(out.matches("a[j][k] = 1.0;").count(), 6, "{out}");
        assert_eq!(out.matches("let j = 1u;").count(), 1, "{out}");
        assert_eq!(out.matches("let k = 2u;").count(), 2, "{out}");
        assert!(!out.contains("let k = 3u;"), "{out}");
    }

    #[test]
    fn leaves_other_loops_alone() {
        let src = "for (var i = 0u; i < n; i++) { x += 1.0; } for (; h < STEPS; h++) { y(); } for (var j = 1u; j < N_FIRMS; j++) { z(); }";
        assert_eq!(unroll(src, &[("N_FIRMS", 4)]), src);
    }

    #[test]
    fn loops_in_comments_are_left_alone() {
        let src = "// for (var j = 0u; j < N_FIRMS; j++) { x }\nfor (var j = 0u; j < N_FIRMS; j++) { y(j); }";
        let out = unroll(src, &[("N_FIRMS", 2)]);
        assert!(out.starts_with("// for (var j = 0u; j < N_FIRMS; j++) { x }\n"), "{out}");
        assert_eq!(out.matches("y(j);").count(), 2, "{out}");
    }

    #[test]
    fn braces_in_comments_do_not_count() {
        let src = "for (var j = 0u; j < N_FIRMS; j++) { // a } here\n x(j); }\ny();";
        let out = unroll(src, &[("N_FIRMS", 2)]);
        assert_eq!(out.matches("x(j);").count(), 2, "{out}");
        assert!(out.ends_with("y();"), "{out}");
    }

    #[test]
    #[should_panic(expected = "breaks or continues")]
    fn refuses_a_body_that_continues() {
        unroll("for (var j = 0u; j < N_FIRMS; j++) { if (a) { continue; } b(); }", &[("N_FIRMS", 2)]);
    }

    #[test]
    fn the_kernel_has_no_loop_over_firms_or_segments_left_for_any_shape() {
        for (nf, ns) in [(1, 1), (4, 3), (8, 8)] {
            let src = specialized_source(nf, ns);
            assert!(src.contains(&format!("const MAX_FIRMS: u32 = {nf}u;")) && src.contains(&format!("const MAX_SEGMENTS: u32 = {ns}u;")));
            let code: String = src.lines().map(|l| l.split("//").next().unwrap_or("")).collect();
            assert!(!code.contains("< N_FIRMS;") && !code.contains("< N_SEGMENTS;"), "{nf} x {ns}: a loop was left");
            assert!(src.contains(&format!("let j = {}u;", nf - 1)) && !src.contains(&format!("let j = {nf}u;")));
        }
    }
}
