package dev.qwtonnx.model;

import dev.qwtonnx.QwtException;

/** ONNX tensor element types this tool reads or writes, with their code in TensorProto. */
public enum DataType {
    FLOAT(1, 4), UINT8(2, 1), INT8(3, 1), UINT16(4, 2), INT16(5, 2), INT32(6, 4), INT64(7, 8),
    BOOL(9, 1), FLOAT16(10, 2), DOUBLE(11, 8), UINT32(12, 4), UINT64(13, 8);

    public final int code;
    public final int bytes;

    DataType(int code, int bytes) {
        this.code = code;
        this.bytes = bytes;
    }

    public static DataType of(int code) {
        for (DataType t : values()) {
            if (t.code == code) {
                return t;
            }
        }
        throw new QwtException("unsupported tensor element type code " + code);
    }

    public static boolean isKnown(int code) {
        for (DataType t : values()) {
            if (t.code == code) {
                return true;
            }
        }
        return false;
    }
}
