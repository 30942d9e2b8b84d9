"""smpp"""
