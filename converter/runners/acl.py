"""A minimal pyACL session (`import acl`, CANN's Python API) for machines with the CANN runtime but
without ais_bench. It follows the documented sequence: init -> set_device -> create_context ->
load_from_file -> desc -> device buffers -> execute -> copy back -> unload/reset/finalize, and offers the
part of ais_bench's InferSession interface OmRunner uses (get_inputs, get_outputs, infer, free_resource)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converter.errors import StageFailed

# aclDataType -> numpy
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int8, 3: np.int32, 4: np.uint8, 6: np.int16, 7: np.uint16,
           8: np.uint32, 9: np.int64, 10: np.uint64, 11: np.float64, 12: np.bool_}
_MALLOC_HUGE_FIRST, _HOST_TO_DEVICE, _DEVICE_TO_HOST = 0, 1, 2


@dataclass(frozen=True)
class AclTensor:
    name: str
    shape: tuple[int, ...]
    datatype: str
    size: int
    dtype: type


def _ok(ret: int, what: str) -> None:
    if ret != 0:
        raise StageFailed(f"pyACL {what} failed with error {ret}", hint="see the CANN application log (ASCEND_GLOBAL_LOG_LEVEL=1)")


class AclSession:
    """One OM loaded on one device with pyACL."""

    def __init__(self, device_id: int, model_path: str) -> None:
        import acl

        self.acl = acl
        self.device_id = device_id
        _ok(acl.init(), "init")
        _ok(acl.rt.set_device(device_id), "rt.set_device")
        self.context, ret = acl.rt.create_context(device_id)
        _ok(ret, "rt.create_context")
        self.model_id, ret = acl.mdl.load_from_file(model_path)
        _ok(ret, "mdl.load_from_file")
        self.desc = acl.mdl.create_desc()
        _ok(acl.mdl.get_desc(self.desc, self.model_id), "mdl.get_desc")
        self.inputs = [self._tensor(i, True) for i in range(acl.mdl.get_num_inputs(self.desc))]
        self.outputs = [self._tensor(i, False) for i in range(acl.mdl.get_num_outputs(self.desc))]

    def _tensor(self, index: int, is_input: bool) -> AclTensor:
        mdl = self.acl.mdl
        if is_input:
            dims, ret = mdl.get_input_dims(self.desc, index)
            name, size, dtype = (mdl.get_input_name_by_index(self.desc, index), mdl.get_input_size_by_index(self.desc, index),
                                 mdl.get_input_data_type(self.desc, index))
        else:
            dims, ret = mdl.get_output_dims(self.desc, index)
            name, size, dtype = (mdl.get_output_name_by_index(self.desc, index), mdl.get_output_size_by_index(self.desc, index),
                                 mdl.get_output_data_type(self.desc, index))
        _ok(ret, "mdl.get_dims")
        np_dtype = _DTYPES.get(dtype, np.uint8)
        return AclTensor(name, tuple(dims["dims"]), np.dtype(np_dtype).name, size, np_dtype)

    def get_inputs(self) -> list[AclTensor]:
        return self.inputs

    def get_outputs(self) -> list[AclTensor]:
        return self.outputs

    def _dataset(self, tensors: list[AclTensor]) -> tuple[object, list[int]]:
        acl = self.acl
        dataset = acl.mdl.create_dataset()
        buffers = []
        for t in tensors:
            ptr, ret = acl.rt.malloc(t.size, _MALLOC_HUGE_FIRST)
            _ok(ret, "rt.malloc")
            buffers.append(ptr)
            _, ret = acl.mdl.add_dataset_buffer(dataset, acl.create_data_buffer(ptr, t.size))
            _ok(ret, "mdl.add_dataset_buffer")
        return dataset, buffers

    def _free(self, dataset: object, buffers: list[int]) -> None:
        acl = self.acl
        for i in range(acl.mdl.get_dataset_num_buffers(dataset)):
            acl.destroy_data_buffer(acl.mdl.get_dataset_buffer(dataset, i))
        acl.mdl.destroy_dataset(dataset)
        for ptr in buffers:
            acl.rt.free(ptr)

    def infer(self, feeds: list[np.ndarray], mode: str = "static") -> list[np.ndarray]:
        """Run once; inputs in the model's order, outputs as numpy arrays."""
        acl = self.acl
        _ok(acl.rt.set_context(self.context), "rt.set_context")
        in_set, in_bufs = self._dataset(self.inputs)
        out_set, out_bufs = self._dataset(self.outputs)
        try:
            for t, ptr, array in zip(self.inputs, in_bufs, feeds):
                data = np.ascontiguousarray(array, dtype=t.dtype).tobytes()
                _ok(acl.rt.memcpy(ptr, t.size, acl.util.bytes_to_ptr(data), len(data), _HOST_TO_DEVICE), "rt.memcpy")
            _ok(acl.mdl.execute(self.model_id, in_set, out_set), "mdl.execute")
            results = []
            for t, ptr in zip(self.outputs, out_bufs):
                host, ret = acl.rt.malloc_host(t.size)
                _ok(ret, "rt.malloc_host")
                try:
                    _ok(acl.rt.memcpy(host, t.size, ptr, t.size, _DEVICE_TO_HOST), "rt.memcpy")
                    raw = acl.util.ptr_to_bytes(host, t.size)
                finally:
                    acl.rt.free_host(host)
                results.append(np.frombuffer(raw, dtype=t.dtype).reshape(t.shape).copy())
            return results
        finally:
            self._free(in_set, in_bufs)
            self._free(out_set, out_bufs)

    def free_resource(self) -> None:
        """Unload the model and release the device."""
        acl = self.acl
        acl.mdl.unload(self.model_id)
        acl.mdl.destroy_desc(self.desc)
        acl.rt.destroy_context(self.context)
        acl.rt.reset_device(self.device_id)
        acl.finalize()
