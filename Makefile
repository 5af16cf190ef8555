# SelfXit — the commands the README names. Everything builds in release mode.
SWIFT ?= swift
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/.*version = "\(.*\)".*/\1/p' Sources/SelfXit/SelfXit.swift)

.PHONY: bootstrap build demo test bench install clean

bootstrap:
	@tools/bootstrap.sh

build: bootstrap
	$(SWIFT) build -c release

# Classify the Fashion-MNIST test set with the bundled model.
demo: build
	.build/release/selfxit-demo --model models/fmnist-resnet18-w16.onnx

# Every test: Swift unit and parity tests (release build).
test: bootstrap
	$(SWIFT) build -c release
	$(SWIFT) test -c release

# Speed against ONNX Runtime (needs python3 with tools/requirements.txt).
bench: build
	python3 bench/compare.py

# libselfxit.so, selfxit.h and selfxit.pc under $(PREFIX): then
#   cc app.c $$(pkg-config --cflags --libs selfxit)
install: build
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 .build/release/libselfxit.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/selfxit.h $(DESTDIR)$(PREFIX)/include/
	sed 's|@PREFIX@|$(PREFIX)|; s|@VERSION@|$(VERSION)|' tools/selfxit.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/selfxit.pc

clean:
	rm -rf .build
