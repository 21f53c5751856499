# `make demo` and `make test` do all the set-up on a fresh machine (libtorch from PyPI, then cargo).
.PHONY: setup demo test

setup:
	scripts/setup-libtorch.sh

demo: setup
	cargo run --release -- demo

test: setup
	cargo test --all-targets
