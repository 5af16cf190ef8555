# SelfXit — the commands the README names. Everything builds in release mode.
SWIFT ?= swift
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/.*version = "\(.*\)".*/\1/p' Sources/SelfXit/SelfXit.swift)
# The SONAME's number (libselfxit.so.<ABI_MAJOR>): the header's SX_ABI_VERSION.
ABI_MAJOR := $(shell sed -n 's/^\#define SX_ABI_VERSION \([0-9]*\).*/\1/p' include/selfxit.h)

.PHONY: bootstrap build demo classify test bench experiment install clean

bootstrap:
	@tools/bootstrap.sh

build: bootstrap
	$(SWIFT) build -c release
	@# Programs linked against the build tree look for the SONAME: give it that name too.
	ln -sf libselfxit.so .build/release/libselfxit.so.$(ABI_MAJOR)

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

# Under $(PREFIX): lib/libselfxit.so.$(VERSION) (stripped; SONAME libselfxit.so.$(ABI_MAJOR), the
# Swift runtime linked in, so it needs no toolchain) with the symlinks libselfxit.so.$(ABI_MAJOR)
# and libselfxit.so, include/selfxit.h, lib/pkgconfig/selfxit.pc and lib/cmake/selfxit/. Then
#   cc app.c $$(pkg-config --cflags --libs selfxit)
# or, in CMake: find_package(selfxit CONFIG REQUIRED) + target_link_libraries(app selfxit::selfxit)
LIBDIR = $(DESTDIR)$(PREFIX)/lib
install: build
	install -d $(LIBDIR)/pkgconfig $(LIBDIR)/cmake/selfxit $(DESTDIR)$(PREFIX)/include
	rm -f $(LIBDIR)/libselfxit.so.$(VERSION).tmp
	strip --strip-unneeded -o $(LIBDIR)/libselfxit.so.$(VERSION).tmp .build/release/libselfxit.so
	chmod 755 $(LIBDIR)/libselfxit.so.$(VERSION).tmp
	mv -f $(LIBDIR)/libselfxit.so.$(VERSION).tmp $(LIBDIR)/libselfxit.so.$(VERSION)
	ln -sfn libselfxit.so.$(VERSION) $(LIBDIR)/libselfxit.so.$(ABI_MAJOR)
	ln -sfn libselfxit.so.$(ABI_MAJOR) $(LIBDIR)/libselfxit.so
	@# bin/selfxit: the Swift runtime linked in statically (runs without the toolchain), a second build under .build/static.
	$(SWIFT) build -c release --static-swift-stdlib --product selfxit-cli --scratch-path .build/static
	install -D -s -m 755 .build/static/release/selfxit-cli $(DESTDIR)$(PREFIX)/bin/selfxit
	install -m 644 include/selfxit.h $(DESTDIR)$(PREFIX)/include/
	sed 's|@PREFIX@|$(PREFIX)|; s|@VERSION@|$(VERSION)|' tools/selfxit.pc.in > $(LIBDIR)/pkgconfig/selfxit.pc
	sed 's|@VERSION@|$(VERSION)|g; s|@ABI_MAJOR@|$(ABI_MAJOR)|g' tools/selfxit-config.cmake.in > $(LIBDIR)/cmake/selfxit/selfxit-config.cmake
	sed 's|@VERSION@|$(VERSION)|g' tools/selfxit-config-version.cmake.in > $(LIBDIR)/cmake/selfxit/selfxit-config-version.cmake

clean:
	rm -rf .build
