# SelfXit — the commands the README names. Everything builds in release mode.
SWIFT ?= swift

.PHONY: bootstrap build demo test bench clean

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

clean:
	rm -rf .build
