"""The people estimate: pseudonymised sightings to devices, fixed devices, people present, visits, calibration."""
