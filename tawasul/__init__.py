"""tawasul."""
