"""nengo_ext"""
