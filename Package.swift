// swift-tools-version:6.0
import PackageDescription

// How libselfxit.so is linked (these flags reach only that product: nothing else links SelfXitC).
// - The version script keeps every symbol but sx_* out of it.
// - `-static-stdlib`: the Swift runtime, FoundationEssentials and their shims are linked in
//   (no RUNPATH into the toolchain, runs where no Swift is installed); the library imports
//   FoundationEssentials only, never Foundation (which would pull ICU's 41 MB).
// - `-z defs`: an unresolved symbol is a link error, not a .so that fails when loaded (lld
//   otherwise accepts one silently, e.g. when a runtime library is missing from the line,
//   as the two -l flags below once were). Lifted for sanitized and fuzzing builds
//   (SELFXIT_SANITIZED_BUILD=1, set by the Makefile): their .so leaves the sanitizer runtime's
//   symbols to the executable that loads it.
// - SONAME libselfxit.so.<SX_ABI_VERSION>: keep in step with include/selfxit.h (tools/test.sh checks).
let selfxitABIMajor = 1
let selfxitSharedLibraryFlags = [
    "-use-ld=lld",
    "-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/SelfXitC/exports.map",
    "-static-stdlib",
] + (Context.environment["SELFXIT_SANITIZED_BUILD"] == nil ? ["-Xlinker", "-z", "-Xlinker", "defs"] : []) + [
    // FoundationEssentials' own dependencies, which its module does not autolink statically.
    "-l_FoundationCollections", "-l_FoundationCShims",
    "-Xlinker", "-soname=libselfxit.so.\(selfxitABIMajor)",
]

let package = Package(
    name: "SelfXit",
    products: [
        // libselfxit.so: the engine, linked by C hosts and the Python bindings.
        .library(name: "selfxit", type: .dynamic, targets: ["SelfXitC"]),
        // The Swift API (`import SelfXit`) for other SwiftPM packages.
        .library(name: "SelfXit", targets: ["SelfXit"]),
        .executable(name: "selfxit-demo", targets: ["selfxit-demo"]),
        .executable(name: "selfxit-bench", targets: ["selfxit-bench"]),
        // `selfxit inspect|run|build|report|bench`: the command a user points at their own model and
        // images. Built as selfxit-cli (a product may not share the library's name "selfxit");
        // `make install` installs it as bin/selfxit.
        .executable(name: "selfxit-cli", targets: ["selfxit-cli"]),
    ],
    dependencies: [
        // Flag parsing for the executables (--help, typed values: `--batch abc` is an error).
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Image ingest (Debian: libturbojpeg0-dev, libpng-dev).
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        // Packed SGEMM with AVX-512 / AVX2 / scalar micro-kernels picked at run time (C, intrinsics),
        // and the general single-threaded `sx_sgemm` over them.
        .target(name: "SelfXitGEMM", path: "Sources/SelfXitGEMM"),
        .target(
            name: "SelfXit",
            // No BLAS: dense layers and exit heads run on SelfXitGEMM's `sx_sgemm`, so that the
            // engine never touches a host's OpenBLAS (its thread count, core, environment).
            dependencies: ["CTurboJPEG", "CPNG", "SelfXitGEMM"],
            path: "Sources/SelfXit"
        ),
        // The C interface: include/selfxit.h seen from Swift, and the @_cdecl shell over the
        // Swift API. The version script keeps every symbol but sx_* out of libselfxit.so.
        .systemLibrary(name: "CSelfXitABI", path: "Sources/CSelfXitABI"),
        .target(
            name: "SelfXitC",
            dependencies: ["SelfXit", "CSelfXitABI"],
            path: "Sources/SelfXitC",
            exclude: ["exports.map"],
            linkerSettings: [.unsafeFlags(selfxitSharedLibraryFlags)]
        ),
        // zlib, for the gzip-compressed Fashion-MNIST files the demo and experiments read.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "SelfXitDatasets", dependencies: ["SelfXit", "CZlib"], path: "Sources/SelfXitDatasets"),
        .executableTarget(name: "selfxit-demo", dependencies: ["SelfXit", "SelfXitDatasets", .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Sources/selfxit-demo"),
        .executableTarget(name: "selfxit-bench", dependencies: ["SelfXit", .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Sources/selfxit-bench"),
        // Issue 16's experiments: threshold guarantee check, drift stream with guard and rebuild.
        .executableTarget(name: "selfxit-honest", dependencies: ["SelfXit", "SelfXitDatasets", .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Sources/selfxit-honest"),
        .executableTarget(name: "selfxit-experiment", dependencies: ["SelfXit", "SelfXitDatasets", .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Sources/selfxit-experiment"),
        // Kernel micro-benchmark: ResNet-18 / MobileNetV2 conv layers, GFLOPS at batch 1 and 32.
        .executableTarget(name: "selfxit-kernelbench", dependencies: ["SelfXit", .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Sources/selfxit-kernelbench"),
        .executableTarget(name: "selfxit-cli", dependencies: ["SelfXit", .product(name: "ArgumentParser", package: "swift-argument-parser")], path: "Sources/selfxit-cli"),
        .testTarget(
            name: "SelfXitTests",
            dependencies: ["SelfXit", "SelfXitDatasets"],
            path: "Tests/SelfXitTests"
        ),
    ],
    swiftLanguageModes: [.v5]
)
