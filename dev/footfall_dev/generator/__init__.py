"""Synthetic store days: probe-request captures from a modelled population, with their ground truth.

    model = StoreModel(seed=3, visitors=400)
    truth = write_day(model, Path("day.pcap"))      # day.pcap + day.truth.json
    truth, paths = write_store(replace(model, sensors=TWO_SENSORS), Path("s.pcap"))  # s.door-1.pcap...
    day = generate(model)                           # day.truth, day.records() -> (ts_ns, bytes)...
    Truth.load(Path("day.truth.json"))

`python -m footfall_dev.generator --demo` regenerates the demo capture shipped in sensor/demo/.
Modules: model (parameters), devices (how phones probe), lab (phone classes measured on the lab days),
catalog (all classes by name), population (who moves where), radio
(what the sensor hears), truth (the answers), day (the two passes and the writer).
"""

from footfall_dev.generator.catalog import CLASSES
from footfall_dev.generator.day import (
    GeneratedDay,
    Record,
    generate,
    scale_to_frames,
    sensor_path,
    truth_path,
    write_day,
    write_store,
)
from footfall_dev.generator.devices import AddressPolicy, DeviceClass, SeqPolicy
from footfall_dev.generator.model import DEMO_SEED, TWO_SENSORS, ModelError, SensorPlace, StoreModel
from footfall_dev.generator.population import Kind
from footfall_dev.generator.truth import Count, DeviceTruth, Occupancy, PersonTruth, Truth

__all__ = [
    "CLASSES",
    "DEMO_SEED",
    "TWO_SENSORS",
    "AddressPolicy",
    "Count",
    "DeviceClass",
    "DeviceTruth",
    "GeneratedDay",
    "Kind",
    "ModelError",
    "Occupancy",
    "PersonTruth",
    "Record",
    "SensorPlace",
    "SeqPolicy",
    "StoreModel",
    "Truth",
    "generate",
    "scale_to_frames",
    "sensor_path",
    "truth_path",
    "write_day",
    "write_store",
]
