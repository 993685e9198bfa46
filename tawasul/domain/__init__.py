"""tawasul/domain."""
