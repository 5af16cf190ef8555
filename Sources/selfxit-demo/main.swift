import SelfXit
print("SelfXit \(SelfXit.version)")
