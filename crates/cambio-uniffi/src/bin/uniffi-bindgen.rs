//! UniFFI's binding generator, at the version the scaffolding was built with.

fn main() {
    uniffi::uniffi_bindgen_main()
}
