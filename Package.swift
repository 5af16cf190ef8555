// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SelfXit",
    products: [
        // libselfxit.so: the engine, linked by C hosts and the Python bindings.
        .library(name: "selfxit", type: .dynamic, targets: ["SelfXitC"]),
        .executable(name: "selfxit-demo", targets: ["selfxit-demo"]),
        .executable(name: "selfxit-bench", targets: ["selfxit-bench"]),
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
            linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/SelfXitC/exports.map"])]
        ),
        // zlib, for the gzip-compressed Fashion-MNIST files the demo and experiments read.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "SelfXitDatasets", dependencies: ["SelfXit", "CZlib"], path: "Sources/SelfXitDatasets"),
        .executableTarget(name: "selfxit-demo", dependencies: ["SelfXit", "SelfXitDatasets"], path: "Sources/selfxit-demo"),
        .executableTarget(name: "selfxit-bench", dependencies: ["SelfXit"], path: "Sources/selfxit-bench"),
        .executableTarget(name: "selfxit-experiment", dependencies: ["SelfXit", "SelfXitDatasets"], path: "Sources/selfxit-experiment"),
        // Kernel micro-benchmark: ResNet-18 / MobileNetV2 conv layers, GFLOPS at batch 1 and 32.
        .executableTarget(name: "selfxit-kernelbench", dependencies: ["SelfXit"], path: "Sources/selfxit-kernelbench"),
        .testTarget(
            name: "SelfXitTests",
            dependencies: ["SelfXit", "SelfXitDatasets"],
            path: "Tests/SelfXitTests"
        ),
    ],
    swiftLanguageModes: [.v5]
)
