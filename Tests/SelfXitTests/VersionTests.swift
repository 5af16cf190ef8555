import XCTest
@testable import SelfXit
final class VersionTests: XCTestCase {
    func testVersionIsSemantic() { XCTAssertEqual(SelfXit.version.split(separator: ".").count, 3) }
}
