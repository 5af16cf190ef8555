# SelfXit — the commands the README names. Everything builds in release mode.
SWIFT ?= swift
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/.*version = "\(.*\)".*/\1/p' Sources/SelfXit/SelfXit.swift)
# The SONAME's number (libselfxit.so.<ABI_MAJOR>): the header's SX_ABI_VERSION.
ABI_MAJOR := $(shell sed -n 's/^\#define SX_ABI_VERSION \([0-9]*\).*/\1/p' include/selfxit.h)

.PHONY: bootstrap build demo classify test bench experiment install clean
.PHONY: fuzz fuzz-build fuzz-seeds fuzz-regress sanitize sanitize-asan sanitize-tsan

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

# ---- Fuzzing and sanitizers (docs/HARDENING.md) ----------------------------------------------
# The clang of the Swift toolchain: it ships libFuzzer and the sanitizer runtimes.
SANITIZER_CC ?= $(dir $(realpath $(shell command -v $(SWIFT))))clang
FUZZ_HARNESSES ?= onnx bundle image input
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?=
# Extra libFuzzer flags, e.g. FUZZ_ARGS="-fork=1 -ignore_crashes=1" to keep going past a crash.
FUZZ_ARGS ?=
FUZZ_DIR := .build/fuzz
# A sanitized libselfxit.so leaves the sanitizer runtime's symbols (__asan_*, __sanitizer_cov_*,
# __tsan_*) to the executable that loads it: Package.swift lifts its `-z defs` when
# SELFXIT_SANITIZED_BUILD is set (an -Xlinker flag would reach the executables' gold too).
SANITIZED_BUILD := env SELFXIT_SANITIZED_BUILD=1
# A size claim the library cannot meet must be refused before it allocates: malloc_limit_mb
# reports any single allocation above 1 GiB as a crash, rss_limit_mb a process above 2 GiB.
# LeakSanitizer is off: Swift keeps class references in multi-payload enums with tag bits in
# the pointer's spare bits, which LSan cannot follow, so live engines read as "direct leaks".
FUZZ_LIMITS := -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 -detect_leaks=0
# Largest input libFuzzer makes: 64 KiB (the input harness needs 2 + 8 + 4 x 4 x 784 bytes at most).
FUZZ_MAX_LEN ?= 65536
# Swift's own crash backtracer reads the stack in ways ASan reports; libFuzzer prints the trace.
FUZZ_ENV := SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 ASAN_SYMBOLIZER_PATH=$(dir $(SANITIZER_CC))llvm-symbolizer

# The library with libFuzzer's coverage (Swift: -sanitize=fuzzer; C kernels: fuzzer-no-link)
# and ASan, then each harness linked with libFuzzer's main.
fuzz-build:
	$(SANITIZED_BUILD) $(SWIFT) build -c release --product selfxit --scratch-path $(FUZZ_DIR) \
	   -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address
	ln -sf libselfxit.so $(FUZZ_DIR)/release/libselfxit.so.$(ABI_MAJOR)
	@mkdir -p $(FUZZ_DIR)/bin
	for h in $(FUZZ_HARNESSES); do \
	   $(SANITIZER_CC) -g -O1 -Wall -Wextra -fsanitize=fuzzer,address -fuse-ld=lld -Iinclude \
	      -DSX_FUZZ_ROOT_DEFAULT='"$(CURDIR)"' Tests/Fuzz/fuzz_$$h.c -o $(FUZZ_DIR)/bin/fuzz_$$h \
	      -L$(FUZZ_DIR)/release -lselfxit -Wl,-rpath,$(CURDIR)/$(FUZZ_DIR)/release 2>&1 \
	      | grep -v 'Cannot export local symbol' || true; \
	   test -x $(FUZZ_DIR)/bin/fuzz_$$h || exit 1; \
	done

# Each harness for FUZZ_SECONDS (or FUZZ_RUNS inputs), one after the other. The working corpus
# lives in .build/fuzz/corpus/<harness> (kept between runs); committed seeds and reproducers are
# read-only inputs. A crash stops the run and leaves its input in .build/fuzz/artifacts/<harness>/.
fuzz: fuzz-build
	@for h in $(FUZZ_HARNESSES); do \
	   mkdir -p $(FUZZ_DIR)/corpus/$$h $(FUZZ_DIR)/artifacts/$$h; \
	   if [ $$h = onnx ]; then find Tests/Fixtures/models -name '*.onnx' -size -64k -exec cp -n {} $(FUZZ_DIR)/corpus/onnx/ \; ; fi; \
	   echo "== fuzz_$$h"; \
	   $(FUZZ_ENV) $(FUZZ_DIR)/bin/fuzz_$$h $(FUZZ_LIMITS) -max_len=$(FUZZ_MAX_LEN) -print_final_stats=1 \
	      $$(test -f Tests/Fuzz/$$h.dict && echo -dict=Tests/Fuzz/$$h.dict) \
	      $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS)) $(FUZZ_ARGS) \
	      -artifact_prefix=$(FUZZ_DIR)/artifacts/$$h/ \
	      $(FUZZ_DIR)/corpus/$$h Tests/Fuzz/seeds/$$h Tests/Fuzz/regressions/$$h || exit 1; \
	done

# Rewrites the committed seeds that come from the library (a saved exit bundle, images, inputs)
# and the tiny ONNX models. Run after a change of the bundle format.
fuzz-seeds: build
	cc -std=c99 -O2 -Wall -Wextra -Iinclude Tests/Fuzz/make_seeds.c -o .build/make_seeds \
	   -L.build/release -lselfxit -Wl,-rpath,$(CURDIR)/.build/release -lpng -lturbojpeg -lm
	.build/make_seeds $(CURDIR)
	python3 Tests/Fuzz/derive_bundle_seeds.py
	python3 Tests/Fuzz/make_onnx_seeds.py

# Every committed reproducer (Tests/Fuzz/regressions/<harness>/*) once, through the same harness
# code, against the normal release library: no libFuzzer, no sanitizer (tools/test.sh runs it).
FUZZ_REGRESS_DIR := .build/fuzz-regress
fuzz-regress:
	$(SWIFT) build -c release --product selfxit
	ln -sf libselfxit.so .build/release/libselfxit.so.$(ABI_MAJOR)
	@mkdir -p $(FUZZ_REGRESS_DIR)
	@for h in $(FUZZ_HARNESSES); do \
	   cc -std=c99 -O1 -g -Wall -Wextra -D_GNU_SOURCE -Iinclude -DSX_FUZZ_ROOT_DEFAULT='"$(CURDIR)"' \
	      Tests/Fuzz/replay_main.c Tests/Fuzz/fuzz_$$h.c -o $(FUZZ_REGRESS_DIR)/replay_$$h \
	      -L.build/release -lselfxit -Wl,-rpath,$(CURDIR)/.build/release || exit 1; \
	   echo "== replay $$h: $$(ls Tests/Fuzz/regressions/$$h | wc -l) reproducers"; \
	   timeout 600 $(FUZZ_REGRESS_DIR)/replay_$$h Tests/Fuzz/regressions/$$h || exit 1; \
	done

# ASan and TSan builds under their own scratch paths, each running the Swift tests
# (SANITIZE_TEST_FILTER narrows them), the C ABI program and the concurrency stress program.
SANITIZE_TEST_FILTER ?=
SX_STRESS_SECONDS ?= 20
SANITIZE_SWIFT_TESTS ?= 1
sanitize: sanitize-asan sanitize-tsan

sanitize-asan:
	$(MAKE) sanitize-one SAN=address SAN_DIR=.build/asan \
	   SAN_ENV="SX_TEST_UNDER_SANITIZER=address SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:allocator_may_return_null=1 ASAN_SYMBOLIZER_PATH=$(dir $(SANITIZER_CC))llvm-symbolizer"

# The static TSan runtime of the Swift toolchain's clang intercepts libdispatch: a C program
# linked with it needs the toolchain's libdispatch and BlocksRuntime.
SWIFT_LIB_DIR := $(realpath $(dir $(SANITIZER_CC))../lib/swift/linux)
sanitize-tsan:
	$(MAKE) sanitize-one SAN=thread SAN_DIR=.build/tsan \
	   SAN_LDFLAGS="-L$(SWIFT_LIB_DIR) -Wl,--no-as-needed -ldispatch -lBlocksRuntime -Wl,-rpath,$(SWIFT_LIB_DIR)" \
	   SAN_ENV="SX_TEST_UNDER_SANITIZER=thread SWIFT_BACKTRACE=enable=no TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:allocator_may_return_null=1 TSAN_SYMBOLIZER_PATH=$(dir $(SANITIZER_CC))llvm-symbolizer"

sanitize-one:
	$(SANITIZED_BUILD) $(SWIFT) build -c release --product selfxit --scratch-path $(SAN_DIR) --sanitize=$(SAN)
	ln -sf libselfxit.so $(SAN_DIR)/release/libselfxit.so.$(ABI_MAJOR)
	$(SANITIZER_CC) -std=c99 -O1 -g -Wall -Wextra -fsanitize=$(SAN) -fuse-ld=lld -Iinclude Tests/CABI/stress.c \
	   -o $(SAN_DIR)/stress -L$(SAN_DIR)/release -lselfxit -Wl,-rpath,$(CURDIR)/$(SAN_DIR)/release $(SAN_LDFLAGS) -lpthread
	@echo "== stress ($(SAN))"
	env $(SAN_ENV) SX_STRESS_SECONDS=$(SX_STRESS_SECONDS) $(SAN_DIR)/stress $(CURDIR)
	@echo "== C ABI program ($(SAN))"
	env $(SAN_ENV) CC=$(SANITIZER_CC) CFLAGS="-fsanitize=$(SAN) -fuse-ld=lld -g $(SAN_LDFLAGS)" Tests/CABI/run.sh $(CURDIR) $(SAN_DIR)/release
	@# SANITIZE_SWIFT_TESTS=0 stops after the stress and C ABI programs (the Swift suite under TSan
	@# takes about 9 min of tests on 2 cores).
	@if [ "$(SANITIZE_SWIFT_TESTS)" = 0 ]; then echo "== Swift tests ($(SAN)): skipped (SANITIZE_SWIFT_TESTS=0)"; else \
	   echo "== Swift tests ($(SAN))"; \
	   env $(SAN_ENV) SELFXIT_SANITIZED_BUILD=1 $(SWIFT) test -c release --scratch-path $(SAN_DIR) --sanitize=$(SAN) \
	      $(if $(SANITIZE_TEST_FILTER),--filter '$(SANITIZE_TEST_FILTER)'); fi

# ---- Conformance with ONNX Runtime over the torchvision zoo (issue 13; docs/BENCHMARKS.md) ----
# Exports 30 classifiers (random weights, randomised BatchNorm/LayerNorm, opsets 13 and 17,
# dynamic batch) under Debian's python3-torch/python3-torchvision into .cache/zoo, then compares
# the engine with ONNX Runtime (tools venv) at batch 1 and 4, one child process per model.
# Long (tens of minutes): not part of `make test`. CONFORMANCE_ARGS="--only swin_t,vit_b_16".
CONFORMANCE_ARGS ?= --markdown
.PHONY: conformance
conformance: build
	@dpkg -s python3-torchvision >/dev/null 2>&1 || apt-get install -y python3-torch python3-torchvision
	/usr/bin/python3 tools/zoo_export.py
	SELFXIT_LIBRARY=$(CURDIR)/.build/release/libselfxit.so $$(tools/zoo_venv.sh) tools/zoo_conformance.py $(CONFORMANCE_ARGS)
	/usr/bin/python3 tools/export_detectors.py
	SELFXIT_LIBRARY=$(CURDIR)/.build/release/libselfxit.so $$(tools/zoo_venv.sh) tools/detector_conformance.py --ops $(DETECTOR_CONFORMANCE_ARGS)

# The detectors alone (issue 13): torchvision's five detectors, random weights, one frame.
DETECTOR_CONFORMANCE_ARGS ?= --markdown
.PHONY: conformance-detectors
conformance-detectors: build
	@dpkg -s python3-torchvision >/dev/null 2>&1 || apt-get install -y python3-torch python3-torchvision
	/usr/bin/python3 tools/export_detectors.py
	SELFXIT_LIBRARY=$(CURDIR)/.build/release/libselfxit.so $$(tools/zoo_venv.sh) tools/detector_conformance.py --ops $(DETECTOR_CONFORMANCE_ARGS)

# ---- The C kernels on their own (Tests/Kernels/kernel_test.c) -------------------------------
# Every kernel configuration the machine runs, against the portable C kernels and naive loops.
# test-aarch64-kernels cross-compiles the same sources for AArch64 (Debian gcc-aarch64-linux-gnu,
# static) and runs them under qemu-user (Debian qemu-user): the NEON configuration's test on x86.
GEMM_SOURCES = $(shell find Sources/SelfXitGEMM -name '*.c' | LC_ALL=C sort)
KERNEL_TEST_FLAGS = -O2 -std=gnu11 -Wall -Wextra -Werror -ISources/SelfXitGEMM/include -ISources/SelfXitGEMM
KERNEL_CC ?= $(SANITIZER_CC)
AARCH64_CC ?= aarch64-linux-gnu-gcc
QEMU_AARCH64 ?= qemu-aarch64
.PHONY: test-kernels test-aarch64-kernels

test-kernels:
	@mkdir -p .build/kernels
	$(KERNEL_CC) $(KERNEL_TEST_FLAGS) Tests/Kernels/kernel_test.c $(GEMM_SOURCES) -o .build/kernels/kernel_test -lm -lpthread
	.build/kernels/kernel_test

test-aarch64-kernels:
	@command -v $(AARCH64_CC) >/dev/null || { echo "$(AARCH64_CC) missing: apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross"; exit 1; }
	@command -v $(QEMU_AARCH64) >/dev/null || { echo "$(QEMU_AARCH64) missing: apt-get install qemu-user"; exit 1; }
	@mkdir -p .build/aarch64
	@# gcc does not know clang's loop pragmas (sgemm.c): they are hints, ignored there.
	$(AARCH64_CC) $(KERNEL_TEST_FLAGS) -Wno-unknown-pragmas -static Tests/Kernels/kernel_test.c $(GEMM_SOURCES) \
	   -o .build/aarch64/kernel_test -lm -lpthread
	$(QEMU_AARCH64) .build/aarch64/kernel_test
