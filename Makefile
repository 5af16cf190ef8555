# SelfXit — the commands the README names. Everything builds in release mode.
SWIFT ?= swift
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/.*version = "\(.*\)".*/\1/p' Sources/SelfXit/SelfXit.swift)

.PHONY: bootstrap build demo classify test bench experiment install clean

bootstrap:
	@tools/bootstrap.sh

build: bootstrap
	$(SWIFT) build -c release

FRAMES := .build/frames
CAMERA_LOOP := .build/camera_loop

# The camera loop (examples/camera_loop.c) over 6 000 Fashion-MNIST test images as frames:
# it collects with exits off, builds exits from that unlabeled traffic, and carries on
# with early exits, printing each result and a final table.
demo: build
	@[ -f $(FRAMES)/frame_05999_label*.png ] 2>/dev/null || python3 tools/write_frames.py --out $(FRAMES) --count 6000
	cc -std=c99 -O2 -Wall -Wextra -pedantic -Iinclude examples/camera_loop.c -o $(CAMERA_LOOP) \
	   -L.build/release -lselfxit -Wl,-rpath,$(CURDIR)/.build/release -lpthread
	$(CAMERA_LOOP) --model models/fmnist-resnet18-w16.onnx --frames $(FRAMES) --fps 1000 --collect 3000 --tolerance 0.01 --quiet

# Classify the whole Fashion-MNIST test set with the full model: accuracy and latency.
classify: build
	.build/release/selfxit-demo --model models/fmnist-resnet18-w16.onnx

# Every test (release build): Swift suites, header checks, C ABI program, Python package.
test: bootstrap
	tools/test.sh

# Speed against ONNX Runtime and the paper's experiment (need python3 with
# tools/requirements.txt; models are made and cached under .cache/ on first use).
bench: build
	python3 bench/make_bench_models.py
	python3 bench/compare.py

experiment: build
	python3 bench/paper_experiment.py --train

# libselfxit.so, selfxit.h and selfxit.pc under $(PREFIX): then
#   cc app.c $$(pkg-config --cflags --libs selfxit)
install: build
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 755 .build/release/libselfxit.so $(DESTDIR)$(PREFIX)/lib/
	@# bin/selfxit: the Swift runtime linked in statically (runs without the toolchain), a second build under .build/static.
	$(SWIFT) build -c release --static-swift-stdlib --product selfxit-cli --scratch-path .build/static
	install -D -s -m 755 .build/static/release/selfxit-cli $(DESTDIR)$(PREFIX)/bin/selfxit
	install -m 644 include/selfxit.h $(DESTDIR)$(PREFIX)/include/
	sed 's|@PREFIX@|$(PREFIX)|; s|@VERSION@|$(VERSION)|' tools/selfxit.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/selfxit.pc

clean:
	rm -rf .build
