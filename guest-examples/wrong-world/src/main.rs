//! Not a handler: a plain command-line program, which builds to a `wasi:cli/command`
//! component. The host must refuse to load it (it does not export `handle`), with a reason,
//! and keep running whatever it ran before; the tests use it to check that.

fn main() {
    println!("wrong-world: a wasi:cli/command component, not a watchtower handler");
}
