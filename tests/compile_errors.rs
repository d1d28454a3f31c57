//! Misuse of typed paths fails to compile with a message naming the field; the expected
//! messages are kept in `tests/ui/*.stderr`.

#[test]
fn misuse_fails_to_compile_naming_the_field() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
